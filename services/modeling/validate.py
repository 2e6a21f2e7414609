"""`tumorsearch validate`: the paper's validation, written to docs/results/ (tables and PNG figures).

    tumorsearch validate --epochs 8 --work var/validation --out docs/results [--groups cv,sizes,...]

Each run trains (resumably) into <work>/<run>/ and is evaluated once into <work>/<run>/eval.json, so an
interrupted validation continues where it stopped. Robustness, t-SNE and retrieval examples use the
checkpoint given with --checkpoint (by default the shipped one).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from services.modeling.common import code_version
from services.modeling.experiments import unique_runs, validation_runs
from services.modeling.report import write_report
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.device import pick_device
from shared.model.evaluation import evaluate
from shared.model.figshare import load_figshare
from shared.model.training import train

GROUPS = ("cv", "sizes", "tasks", "recipe")
# Training order when time is short: the runs most tables share first, then the task ablation, the
# rest of the cross-validation, and the embedding sizes.
PRIORITY = ("cv-fold5", "tasks-all", "tasks-seg", "tasks-type", "tasks-type-seg", "recipe-plain",
            "cv-fold1", "cv-fold2", "cv-fold3", "cv-fold4", "size-16", "size-32", "size-96")


def command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tumorsearch validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=8, help="epochs of every validation run")
    p.add_argument("--work", type=Path, default=Path("var/validation"), help="checkpoints of the runs")
    p.add_argument("--out", type=Path, default=Path("docs/results"), help="where the report goes")
    p.add_argument("--groups", default=",".join(GROUPS), help=f"subset of {','.join(GROUPS)}")
    p.add_argument("--checkpoint", type=Path, default=None, help="for robustness, t-SNE, examples")
    p.add_argument("--report-only", action="store_true", help="write the report from finished runs")
    args = p.parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "validate")
    groups = [g for g in args.groups.split(",") if g]
    runs = [r for r in validation_runs(args.epochs) if r.group in groups]
    device = pick_device(settings.device)
    data = load_figshare(settings.figshare_dir, runs[0].config.size if runs else 128)
    if not args.report_only:
        trained = [run for name, run in unique_runs(runs).items() if name == run.name]
        trained.sort(key=lambda run: PRIORITY.index(run.name) if run.name in PRIORITY else len(PRIORITY))
        for run in trained:
            train_and_evaluate(run, data, args.work, device)
    results = {r.name: _read(args.work / unique_runs(runs)[r.name].name / "eval.json") for r in runs}
    write_report(runs, results, args, data, device)
    return 0


def train_and_evaluate(run, data, work: Path, device: torch.device) -> None:
    folder = work / run.name
    result_path = folder / "eval.json"
    if result_path.is_file():
        return
    print(f"== {run.name}: {run.label} ({run.config.epochs} epochs, test fold {run.config.test_fold})", flush=True)
    train(run.config, data, folder, device, code_version(),
          on_epoch=lambda h: print(f"   epoch {h['epoch']}: loss {h['loss']:.4f} ({h['seconds']} s)", flush=True))
    model, card = checkpoint.load(folder, device)
    result = evaluate(model, data, run.config.test_fold, device)
    result["epochs"] = card["epochs_done"]
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"   mAP expert {result['map_expert_box']:.4f} auto {result['map_auto_box']:.4f} "
          f"dice {result['dice']:.4f}", flush=True)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
