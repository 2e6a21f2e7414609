"""`tumorsearch dice`: where segmentation loses Dice on a test fold, for one or more checkpoints and for
the average of their probabilities (docs/model-experiments.md).

    tumorsearch dice --checkpoint A [--checkpoint B ...] [--test-fold 5] [--mask-rule card|plain]
                     [--ensemble-threshold 0.5] [--largest-component] [--data-grid] [--json OUT]
                     [--failures-png OUT.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from services.modeling.common import write_json
from services.modeling.failure_gallery import failure_gallery
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.device import pick_device
from shared.model.dice_report import dice_breakdown, failure_list
from shared.model.inference import largest_component, tumour_probabilities
from shared.model.figshare import SOURCE_SIZE, load_figshare
from shared.model.mask_rule import MaskRule
from shared.model.preprocess import resize_to


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch dice", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, action="append", required=True, help="repeat for an ensemble")
    p.add_argument("--data", type=Path, default=None, help="figshare folder (default: TUMORSEARCH_DATA_DIR's)")
    p.add_argument("--test-fold", type=int, default=None, help="default: the first checkpoint's test fold")
    p.add_argument("--mask-rule", choices=("card", "plain"), default="card",
                   help="card: each checkpoint's own rule; plain: p > 0.5, no flip")
    p.add_argument("--ensemble-threshold", type=float, default=0.5,
                   help="threshold of the averaged probability (with two or more checkpoints)")
    p.add_argument("--largest-component", action="store_true",
                   help="keep each image's largest predicted component only (the tumour the automatic box "
                        "is drawn around; every figshare slice holds one tumour)")
    p.add_argument("--data-grid", action="store_true",
                   help="score at the data's own grid (the 256-px PNGs): probabilities up-sampled bilinearly, "
                        "against the expert masks as given, instead of at the model's grid")
    p.add_argument("--json", type=Path, default=None,
                   help="write the breakdown and the list of failed images here (else stdout)")
    p.add_argument("--failures-png", type=Path, default=None,
                   help="draw the first checkpoint's failed images (Dice < 0.1) with the expert's and the "
                        "model's outlines into this PNG")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
    return p


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "dice")
    device = pick_device(settings.device)
    loaded = [checkpoint.load(path, device, settings.precision) for path in args.checkpoint]
    sizes = {card["architecture"]["input_size"] for _, card in loaded}
    if len(sizes) != 1:
        print(f"tumorsearch dice: expected checkpoints of one input size, found {sorted(sizes)}")
        return 2
    fold = _test_fold(args, loaded)
    root, size = args.data or settings.figshare_dir, sizes.pop()
    test = load_figshare(root, size, limit=args.limit).folds_in([fold])
    truth = load_figshare(root, SOURCE_SIZE, limit=args.limit).folds_in([fold]) if args.data_grid else test
    report = {"test_fold": fold, "images": len(test), "largest_component": args.largest_component,
              "grid": truth.masks.shape[-1], "models": [], "ensemble": None}
    probabilities, masks = [], []
    for path, (model, card) in tqdm(list(zip(args.checkpoint, loaded)), desc="checkpoints", unit="model"):
        rule = MaskRule() if args.mask_rule == "plain" else model.mask_rule
        probability = _upsampled(tumour_probabilities(model, test.images, device, rule), truth.masks.shape[-2:])
        probabilities.append(probability)
        mask, scored = _scored(probability, rule.threshold, truth, args.largest_component)
        masks.append(mask)
        report["models"].append({"checkpoint": str(path), "model_version": card["model_version"],
                                 "mask_rule": rule.to_json()} | scored)
    if len(probabilities) > 1:
        _, scored = _scored(np.mean(probabilities, axis=0), args.ensemble_threshold, truth, args.largest_component)
        report["ensemble"] = {"threshold": args.ensemble_threshold} | scored
    if args.failures_png:
        _draw_failures(args.failures_png, truth, masks[0], report["models"][0]["failures"])
    write_json(args.json, report)
    _print_table(report)
    return 0


def _scored(probability: np.ndarray, threshold: float, truth, largest: bool) -> tuple[np.ndarray, dict]:
    """(predicted masks, Dice breakdown with the list of failed images) at `threshold`."""
    masks = probability > threshold
    masks = _largest_components(masks) if largest else masks
    breakdown = dice_breakdown(masks, truth.masks, truth.types)
    return masks, breakdown | {"failures": failure_list(masks, truth.masks, probability, truth.types, truth.ids)}


def _draw_failures(path: Path, truth, masks: np.ndarray, failures: list[dict]) -> None:
    if not failures:
        print(f"no failed images (Dice < 0.1): {path} not written")
        return
    drawn = failure_gallery(truth.images, truth.masks, masks, truth.ids, failures, path)
    print(f"{drawn} failed images drawn into {path}")


def _test_fold(args: argparse.Namespace, loaded: list) -> int:
    """--test-fold or the first checkpoint's own; a warning for each checkpoint that trained on it."""
    fold = args.test_fold or loaded[0][1]["test_fold"]
    for path, (_, card) in zip(args.checkpoint, loaded):
        if fold in card["train_folds"]:
            print(f"warning: {path} was trained on fold {fold}; its figures are not a test result")
    return fold


def _upsampled(probability: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(N, H, W) probabilities resized to `shape` the way the worker resizes (bilinear when growing)."""
    if probability.shape[-2:] == tuple(shape):
        return probability
    return np.stack([resize_to(p, shape) for p in probability])


def _largest_components(masks: np.ndarray) -> np.ndarray:
    return np.array([largest_component(m) for m in masks]).reshape(masks.shape)


def _print_table(report: dict) -> None:
    rows = [(m["model_version"], m) for m in report["models"]]
    if report["ensemble"]:
        rows.append(("average of all", report["ensemble"]))
    for name, row in rows:
        types = ", ".join(f"{t} {s['dice']:.3f} ({s['failed']} failed)" for t, s in row["by_type"].items())
        print(f"{name}: dice {row['all']['dice']:.4f}, pooled {row['all']['dice_pooled']:.4f}; {types}")
