"""`tumorsearch calibrate`: score mask rules (threshold x flip averaging) of a checkpoint on a fold it
never saw and, with --apply-to, write the best rule into another checkpoint's card
(shared/model/calibration.py says why the chooser is a separate, inner model)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from services.modeling.common import code_version, write_json
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.calibration import THRESHOLDS, best_rule, check_independence, rule_grid, score_rules
from shared.model.device import pick_device
from shared.model.figshare import load_figshare
from shared.model.tumour_free import SHARED_VOLUMES, load_check_volume, score_volumes
from shared.model.volumes import read_labels


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch calibrate", description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True, help="the chooser: a model that never saw --fold")
    p.add_argument("--fold", type=int, required=True, help="validation fold (queries); the database is the "
                                                           "chooser's training folds")
    p.add_argument("--apply-to", type=Path, default=None,
                   help="checkpoint whose card gets the chosen rule (its test fold must be unseen by the chooser)")
    p.add_argument("--thresholds", default=",".join(str(t) for t in THRESHOLDS), help="comma-separated")
    p.add_argument("--volumes", default=None,
                   help="`shared` (the labelled volumes of the data folder) or a labels CSV (docs/model-3d.md): "
                        "also count, with the --apply-to model (else the chooser), the tumour-free slices where "
                        "each rule finds a tumour (reported, not used to choose)")
    p.add_argument("--max-mirrored-share", type=_share, default=None,
                   help="choose only among rules that find a tumour on at most this share (0-1) of the "
                        "validation fold's mirrored tumour-free slices (default: no cap)")
    p.add_argument("--data", type=Path, default=None, help="figshare folder (default: TUMORSEARCH_DATA_DIR's)")
    p.add_argument("--json", type=Path, default=None, help="write the scores here (else stdout)")
    return p


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, found {text}")
    return value


def volume_pairs(choice: str, data_root: Path) -> list[tuple[Path, Path]]:
    if choice == "shared":
        return [(data_root / image, data_root / mask) for image, mask in SHARED_VOLUMES]
    return [(e.image, e.mask) for e in read_labels(Path(choice)) if e.mask is not None]


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "calibrate")
    device = pick_device(settings.device)
    model, card = checkpoint.load(args.checkpoint, device, settings.precision)
    target = json.loads((args.apply_to / checkpoint.CARD).read_text()) if args.apply_to else None
    try:
        check_independence(card, args.fold, target or {"test_fold": None})
        rules = rule_grid(tuple(float(t) for t in args.thresholds.split(",")))
    except ValueError as error:
        print(f"tumorsearch calibrate: {error}")
        return 2
    data = load_figshare(args.data or settings.figshare_dir, card["architecture"]["input_size"])
    rows = score_rules(model, data, args.fold, card["train_folds"], device, rules)
    if args.volumes:  # the cost on tumour-free slices belongs to the model that will use the rule
        scorer = checkpoint.load(args.apply_to, device, settings.precision)[0] if args.apply_to else model
        checks = [load_check_volume(image, mask, card["architecture"]["spacing_mm"], scorer.input_multiple)
                  for image, mask in volume_pairs(args.volumes, settings.root)]
        for row, extra in zip(rows, score_volumes(scorer, checks, rules, device)):
            row.update(extra)
    try:
        best = best_rule(rows, args.max_mirrored_share)
    except ValueError as error:
        print(f"tumorsearch calibrate: {error}")
        return 2
    chosen_by = {"checkpoint": card["model_version"], "train_folds": card["train_folds"], "fold": args.fold,
                 "criterion": _criterion(args.max_mirrored_share), "scores": best, "code_version": code_version()}
    result = {"rules": rows, "chosen": {"threshold": best["threshold"], "flip_average": best["flip_average"]},
              "chosen_by": chosen_by}
    if args.apply_to:
        target["mask_rule"] = {**result["chosen"], "chosen_by": chosen_by}
        checkpoint.write_json_atomically(args.apply_to / checkpoint.CARD, target)
    write_json(args.json, result)
    _print_rows(rows, bool(args.volumes))
    print(f"chosen: {result['chosen']}" + (f", written to {args.apply_to}" if args.apply_to else ""))
    return 0


def _criterion(max_mirrored_share: float | None) -> str:
    cap = "" if max_mirrored_share is None else f" among rules with mirrored_share <= {max_mirrored_share:g}"
    return f"highest map_auto_box, then dice{cap}"


def _print_rows(rows: list[dict], with_volumes: bool) -> None:
    for row in rows:
        print(f"threshold {row['threshold']:g} flip {row['flip_average']!s:5}: map_auto {row['map_auto_box']:.4f} "
              f"found {row['auto_box_found']:.3f} dice {row['dice']:.4f} mirrored findings "
              f"{row['mirrored_with_finding']}/{row['mirrored_slices']}" + (
                  f" | false-positive slices {row['false_positive_slices']}/{row['tumour_free_slices']}, lesion "
                  f"slices found {row['lesion_slices_found']}/{row['lesion_slices']}" if with_volumes else ""))
