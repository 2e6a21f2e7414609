"""`tumorsearch evaluate`: the retrieval protocol of Cheng et al. on one test fold, plus Dice, KNN
accuracy per task and the distance/size correlation (docs/model.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from services.modeling.common import write_json
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.device import pick_device
from shared.model.evaluation import evaluate
from shared.model.figshare import load_figshare
from shared.model.mask_rule import MaskRule


def command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tumorsearch evaluate", description="Evaluate a checkpoint on a test fold.")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None, help="figshare folder (default: TUMORSEARCH_DATA_DIR's)")
    p.add_argument("--test-fold", type=int, default=None, help="default: the checkpoint's own test fold")
    p.add_argument("--json", type=Path, default=None, help="write the figures here (else stdout)")
    p.add_argument("--mask-rule", choices=("card", "plain"), default="card",
                   help="card: the checkpoint's mask rule (tumorsearch calibrate); plain: p > 0.5, no flip")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
    args = p.parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "evaluate")
    device = pick_device(settings.device)
    model, card = checkpoint.load(args.checkpoint, device, settings.precision)
    if args.mask_rule == "plain":
        model.mask_rule = MaskRule()
    fold = args.test_fold or card["test_fold"]
    if fold in card["train_folds"]:
        print(f"warning: fold {fold} was used for training this checkpoint; the figures are not a test result")
    data = load_figshare(args.data or settings.figshare_dir, card["architecture"]["input_size"], limit=args.limit)
    result = evaluate(model, data, fold, device)
    result.update({"checkpoint": str(args.checkpoint), "model_version": card["model_version"],
                   "mask_rule": model.mask_rule.to_json()})
    write_json(args.json, result)
    expanded = result["query_expansion"]
    print(f"fold {fold}: mAP expert box {result['map_expert_box']:.4f}, auto box {result['map_auto_box']:.4f} "
          f"(with query expansion {expanded['map_expert_box']:.4f}, {expanded['map_auto_box']:.4f}), "
          f"dice {result['dice']:.4f} ({result['seconds']} s)")
    return 0
