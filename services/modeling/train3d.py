"""`tumorsearch train --dims 3`: train the 3D multitask network on NRRD/NIfTI volumes listed in a
labels CSV (format: shared.model.volumes), then record per-volume Dice in the model card."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from services.modeling.common import code_version
from shared.model.checkpoint import CARD, write_json_atomically
from shared.model.training3d import Train3DConfig, evaluate_volumes, load, train3d
from shared.model.volumes import load_volumes


def _shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected D,H,W (three integers), found {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    d = Train3DConfig()
    p = argparse.ArgumentParser(prog="tumorsearch train --dims 3", description="Train the 3D multitask "
                                "network on volumes (resumes from --out when it holds an unfinished run).")
    p.add_argument("--labels", type=Path, required=True, help="labels CSV: volume_id,image,mask,fold,type")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (written after every epoch)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--channels", type=int, default=d.channels, help="backbone channels = embedding size")
    p.add_argument("--blocks", type=int, default=d.blocks, help="ResBlocks in the backbone")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="volumes per step")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--spacing-mm", type=float, default=d.spacing_mm, help="target voxel size on every axis")
    p.add_argument("--shape", type=_shape, default=d.shape, help="D,H,W after crop/pad (multiples of 4)")
    p.add_argument("--test-fold", type=int, default=0, help="fold kept out and evaluated (0 = none)")
    p.add_argument("--seed", type=int, default=d.seed)
    return p


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    began = time.perf_counter()
    try:
        config = Train3DConfig(channels=args.channels, blocks=args.blocks, epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               spacing_mm=args.spacing_mm, shape=tuple(args.shape), test_fold=args.test_fold)
        volumes = load_volumes(args.labels, config.spacing_mm, config.shape)
    except (ValueError, FileNotFoundError) as exc:
        # Bad input is the user's to fix: say what was wrong, without a traceback.
        print(f"tumorsearch train --dims 3: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {len(volumes)} volumes in {time.perf_counter() - began:.1f} s", flush=True)
    train3d(config, volumes, args.out, code_version(),
            on_epoch=lambda h: print(f"epoch {h['epoch']}: loss {h['loss']:.4f} ({h['seconds']} s)", flush=True))
    model, card = load(args.out)
    held_out = [v for v in volumes if v.fold == config.test_fold]
    evaluated = held_out or volumes
    results = evaluate_volumes(model, evaluated)
    dice = {r["volume_id"]: None if r["dice"] is None else round(r["dice"], 4) for r in results}
    scored = [d for d in dice.values() if d is not None]
    card["metrics"] = {"evaluated_on": f"test fold {config.test_fold}" if held_out else "the training volumes",
                       "dice": dice, "mean_dice": round(sum(scored) / len(scored), 4) if scored else None}
    write_json_atomically(args.out / CARD, card)
    for volume_id, value in dice.items():
        print(f"dice {volume_id}: {value}")
    print(f"checkpoint {args.out} ({card['model_version']}), {card['epochs_done']} epochs, "
          f"{time.perf_counter() - began:.1f} s in all")
    return 0
