"""`tumorsearch train`: train the multitask network on the figshare folds (resumable)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from services.modeling.common import code_version
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model.config import TrainConfig
from shared.model.device import pick_device
from shared.model.figshare import load_figshare
from shared.model.tasks import ALL_TASKS, parse_tasks
from shared.model.training import train


def parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="tumorsearch train", description="Train the multitask tumour model. "
                                "Resumes from --out when it holds an unfinished run of the same configuration. "
                                "`--dims 3 --labels CSV` trains the 3D path on volumes (see docs/model-3d.md).")
    p.add_argument("--data", type=Path, default=None, help="figshare folder (default: figshare-cetumor/ in TUMORSEARCH_DATA_DIR)")
    p.add_argument("--test-fold", type=int, default=defaults.test_fold, help="fold kept out (1-5; 0 = none)")
    p.add_argument("--train-folds", default="",
                   help="comma-separated folds to train on (default: every fold but --test-fold); a subset "
                        "leaves a validation fold for choosing inference settings")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (written after every epoch)")
    p.add_argument("--tasks", default=",".join(ALL_TASKS), help=f"subset of {','.join(ALL_TASKS)}")
    p.add_argument("--channels", type=int, default=defaults.channels, help="backbone channels = embedding size")
    p.add_argument("--blocks", type=int, default=defaults.blocks, help="ResBlocks in the backbone")
    p.add_argument("--seg-channels", type=int, default=defaults.seg_channels,
                   help="width of the segmentation head's ResBlock on the input grid")
    p.add_argument("--mid-level", action="store_true",
                   help="down x4 as two stride-2 steps, the mask head also reading the stride-2 level")
    p.add_argument("--context", action="store_true",
                   help="the mask head also reads the coarse map pooled to 1, 2 and 4 cells per side")
    p.add_argument("--mask-levels", type=int, default=defaults.mask_levels,
                   help="stride-2 levels of a small U-Net on the coarse map, read by the mask head only (0 = none)")
    p.add_argument("--deep-supervision", type=float, default=defaults.deep_supervision,
                   help="weight of a mask loss on each mask level's coarse logit (needs --mask-levels; 0 = off)")
    p.add_argument("--symmetry", action="store_true",
                   help="a second input channel: the image mirrored left to right about its content's centre")
    p.add_argument("--size", type=int, default=defaults.size, help="training grid in pixels (multiple of 4)")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--metric-weight", type=float, default=defaults.metric_weight,
                   help="weight of the supervised-contrastive term (0 = off)")
    p.add_argument("--metric-memory", type=int, default=defaults.metric_memory,
                   help="the metric term also compares each embedding with the last N tumour embeddings of "
                        "earlier batches (cross-batch memory; 0 = this batch only)")
    p.add_argument("--projection", type=int, default=0, help="learned projection size (0 = raw RoiPool)")
    _training_data_arguments(p, defaults)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
    return p


def _training_data_arguments(p: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    """What the network is shown and how the mask loss weighs it: augmentation, extra tumour-free
    images, loss weights."""
    p.add_argument("--no-augment", action="store_true", help="train without augmentation (ablation)")
    p.add_argument("--bias-field", type=float, default=defaults.bias_field,
                   help="augmentation: smooth intensity shading, peak log-gain (0 = off)")
    p.add_argument("--noise", type=float, default=defaults.noise, help="augmentation: largest noise sd (0 = off)")
    p.add_argument("--scale", type=float, default=defaults.scale,
                   help="augmentation: zoom range 1 ± SCALE, SCALE in [0, 0.5)")
    p.add_argument("--blur", type=float, default=defaults.blur,
                   help="augmentation: each image's chance of a Gaussian blur is 1 in 4, its sd drawn up to BLUR "
                        "pixels, BLUR in [0, 3] (0 = off)")
    p.add_argument("--low-res", type=float, default=defaults.low_res,
                   help="augmentation: each image's chance of being down-sampled to a factor drawn from "
                        "[LOW_RES, 1] and back is 1 in 4, LOW_RES in [0.25, 1) (e.g. 0.5; 0 = off)")
    p.add_argument("--negatives", type=float, default=defaults.negatives,
                   help="share of each batch replaced by anatomy-free images with an empty mask (0 = none)")
    p.add_argument("--healthy-mirrors", type=float, default=defaults.healthy_mirrors,
                   help="share of each batch made tumour-free by mirroring a slice's healthy half over its "
                        "tumour (coronal and axial slices with a one-sided tumour; 0 = none)")
    p.add_argument("--tumour-paste", type=float, default=defaults.tumour_paste,
                   help="share of each batch whose slice gets its healthy half mirrored over its tumour and "
                        "the tumour of another slice pasted at a random place in its brain (0 = none)")
    p.add_argument("--reframe", type=float, default=defaults.reframe,
                   help="share of each batch shown as a smaller field of view (a 50-100 %% window of the frame "
                        "moved to its corner, the rest background, as the worker pads; 0 = none)")
    p.add_argument("--seg-weight", type=float, default=defaults.seg_weight, help="weight of the mask loss")
    p.add_argument("--weight-average", type=float, default=defaults.weight_average,
                   help="ship a moving average of the weights with this decay per step (e.g. 0.999; 0 = last step)")
    p.add_argument("--mask-type-weights", default="",
                   help="mask-loss weight per tumour type, meningioma,glioma,pituitary (e.g. 1,2,1; default all 1)")


def parse_list(text: str, convert, flag: str, expected: str) -> tuple:
    """A comma-separated option value, each item converted; a clear exit on a bad item."""
    try:
        return tuple(convert(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise SystemExit(f"tumorsearch train: {flag} expected {expected}, found {text!r}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The training run the parsed options describe (TrainConfig checks the values)."""
    return TrainConfig(tasks=parse_tasks(args.tasks), channels=args.channels, blocks=args.blocks,
                       seg_channels=args.seg_channels, mid_level=args.mid_level, context=args.context,
                       mask_levels=args.mask_levels, symmetry=args.symmetry,
                       deep_supervision=args.deep_supervision, size=args.size,
                       epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       metric_weight=args.metric_weight,
                       metric_memory=args.metric_memory, projection=args.projection,
                       augment=not args.no_augment, bias_field=args.bias_field, noise=args.noise,
                       scale=args.scale, blur=args.blur, low_res=args.low_res,
                       negatives=args.negatives, healthy_mirrors=args.healthy_mirrors,
                       reframe=args.reframe, tumour_paste=args.tumour_paste, weight_average=args.weight_average,
                       seg_weight=args.seg_weight, seed=args.seed,
                       mask_type_weights=parse_list(args.mask_type_weights, float, "--mask-type-weights",
                                                   "numbers like 1,2,1"),
                       test_fold=args.test_fold, train_folds=parse_list(args.train_folds, int, "--train-folds",
                                               "fold numbers like 1,2,3"))


def command(argv: list[str]) -> int:
    if "--dims" in argv:  # `train --dims 3 …` is the 3D path: volumes from a labels CSV
        at = argv.index("--dims")
        dims, rest = (argv[at + 1] if at + 1 < len(argv) else ""), argv[:at] + argv[at + 2:]
        if dims == "3":
            from services.modeling.train3d import command as train3d

            return train3d(rest)
        if dims != "2":
            print(f"tumorsearch train: --dims expected 2 or 3, found {dims!r}")
            return 2
        argv = rest
    args = parser().parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "train")
    config = config_from_args(args)
    data = load_figshare(args.data or settings.figshare_dir, config.size, limit=args.limit)
    device = pick_device(settings.device)
    card = train(config, data, args.out, device, code_version(), on_epoch=_print_epoch,
                 precision=settings.precision)
    print(f"checkpoint {args.out} ({card['model_version']}), {card['epochs_done']} epochs")
    return 0


def _print_epoch(history: dict) -> None:
    # The precision says whether this CPU ran bf16 natively or fp32 (shared/model/device.py).
    print(f"epoch {history['epoch']}: loss {history['loss']:.4f} ({history['seconds']} s, {history['precision']})",
          flush=True)
