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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch calibrate", description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True, help="the chooser: a model that never saw --fold")
    p.add_argument("--fold", type=int, required=True, help="validation fold (queries); the database is the "
                                                           "chooser's training folds")
    p.add_argument("--apply-to", type=Path, default=None,
                   help="checkpoint whose card gets the chosen rule (its test fold must be unseen by the chooser)")
    p.add_argument("--thresholds", default=",".join(str(t) for t in THRESHOLDS), help="comma-separated")
    p.add_argument("--data", type=Path, default=None, help="figshare folder (default: TUMORSEARCH_DATA_DIR's)")
    p.add_argument("--json", type=Path, default=None, help="write the scores here (else stdout)")
    return p


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "calibrate")
    device = pick_device(settings.device)
    model, card = checkpoint.load(args.checkpoint, device)
    target = json.loads((args.apply_to / checkpoint.CARD).read_text()) if args.apply_to else None
    try:
        check_independence(card, args.fold, target or {"test_fold": None})
        rules = rule_grid(tuple(float(t) for t in args.thresholds.split(",")))
    except ValueError as error:
        print(f"tumorsearch calibrate: {error}")
        return 2
    data = load_figshare(args.data or settings.figshare_dir, card["architecture"]["input_size"])
    rows = score_rules(model, data, args.fold, card["train_folds"], device, rules)
    best = best_rule(rows)
    chosen_by = {"checkpoint": card["model_version"], "train_folds": card["train_folds"], "fold": args.fold,
                 "criterion": "highest map_auto_box, then dice", "scores": best, "code_version": code_version()}
    result = {"rules": rows, "chosen": {"threshold": best["threshold"], "flip_average": best["flip_average"]},
              "chosen_by": chosen_by}
    if args.apply_to:
        target["mask_rule"] = {**result["chosen"], "chosen_by": chosen_by}
        checkpoint.write_json_atomically(args.apply_to / checkpoint.CARD, target)
    write_json(args.json, result)
    for row in rows:
        print(f"threshold {row['threshold']:g} flip {row['flip_average']!s:5}: map_auto {row['map_auto_box']:.4f} "
              f"found {row['auto_box_found']:.3f} dice {row['dice']:.4f}")
    print(f"chosen: {result['chosen']}" + (f", written to {args.apply_to}" if args.apply_to else ""))
    return 0
