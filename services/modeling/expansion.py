"""`tumorsearch expansion`: score query-expansion settings (neighbours x power) of a checkpoint on a fold it
never saw, over archives of several sizes, and say which one the rule picks
(shared/model/expansion_choice.py). The gateway's defaults (shared/vectorstore/expansion.py) were chosen
this way with a model trained on folds 1-3 and validation fold 4, never with the test fold 5."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from services.modeling.common import code_version, write_json
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.device import pick_device
from shared.model.evaluation import expert_boxes
from shared.model.expansion_choice import TOLERANCE, best_setting, score_settings
from shared.model.figshare import load_figshare
from shared.model.inference import predict


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch expansion", description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True, help="a model that never saw --fold")
    p.add_argument("--fold", type=int, required=True, help="validation fold (queries); the archives are drawn "
                                                           "from the checkpoint's training folds")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help="largest mAP a setting may lose to no expansion at any archive size")
    p.add_argument("--data", type=Path, default=None, help="figshare folder (default: TUMORSEARCH_DATA_DIR's)")
    p.add_argument("--json", type=Path, default=None, help="write the scores here (else stdout)")
    return p


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "expansion")
    device = pick_device(settings.device)
    model, card = checkpoint.load(args.checkpoint, device, settings.precision)
    if args.fold in card["train_folds"]:
        print(f"tumorsearch expansion: expected a fold the checkpoint never saw, found fold {args.fold} among "
              f"its training folds {card['train_folds']}")
        return 2
    data = load_figshare(args.data or settings.figshare_dir, card["architecture"]["input_size"])
    queries, database = data.folds_in([args.fold]), data.folds_in(card["train_folds"])
    pred_q = predict(model, queries.images, expert_boxes(queries.masks), device)
    pred_d = predict(model, database.images, expert_boxes(database.masks), device)
    rows = score_settings({box: (pred_q.embeddings[box], pred_d.embeddings[box]) for box in ("expert", "auto")},
                          queries.types, database.types)
    try:
        chosen = best_setting(rows, args.tolerance)
    except ValueError as error:
        print(f"tumorsearch expansion: {error}")
        return 2
    write_json(args.json, {"rows": rows, "chosen": chosen, "checkpoint": card["model_version"],
                           "fold": args.fold, "tolerance": args.tolerance, "code_version": code_version()})
    _print_rows(rows)
    print(f"chosen: {chosen}")
    return 0


def _print_rows(rows: list[dict]) -> None:
    for box in dict.fromkeys(r["box"] for r in rows):
        settings = list(dict.fromkeys((r["neighbours"], r["power"]) for r in rows if r["box"] == box))
        archives = list(dict.fromkeys(r["archive"] for r in rows if r["box"] == box))
        table = {(r["neighbours"], r["power"], r["archive"]): r["map"] for r in rows if r["box"] == box}
        print(f"{box} box, mAP by archive size: " + " ".join(f"{a:>6}" for a in archives))
        for n, p in settings:
            label = "no expansion" if n == 0 else f"{n} neighbours, power {p:g}"
            print(f"  {label:<26}" + " ".join(f"{table[(n, p, a)]:6.4f}" for a in archives))
