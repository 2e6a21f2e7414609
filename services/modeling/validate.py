"""`tumorsearch validate`: the paper's validation, written to docs/results/ (tables and PNG figures).

    tumorsearch validate [--epochs 8] --work var/validation --out docs/results [--groups cv,sizes,...]

Every run uses the recipe of --recipe (a checkpoint; by default the shipped one): its training
configuration, with only what a table varies changed, and its mask rule for evaluation. --epochs defaults
to the recipe's. A run whose configuration is exactly the recipe checkpoint's (the fold-5 run at full
length) is not trained again: the recipe checkpoint itself is evaluated. Each other run trains (resumably)
into <work>/<run>/ and is evaluated once into <work>/<run>/eval.json, so an interrupted validation
continues where it stopped. Robustness, t-SNE and retrieval examples use the checkpoint given with
--checkpoint (by default the shipped one).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from services.modeling.common import code_version
from services.modeling.experiments import unique_runs, validation_runs
from services.modeling.report import write_report
from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.device import pick_device
from shared.model.evaluation import evaluate
from shared.model.figshare import load_figshare
from shared.model.mask_rule import MaskRule
from shared.model.training import train

GROUPS = ("cv", "sizes", "tasks", "recipe")
# Training order when time is short: the runs most tables share first, then the task ablation, the
# rest of the cross-validation, and the embedding sizes.
PRIORITY = ("cv-fold5", "tasks-all", "tasks-seg", "tasks-type", "tasks-type-seg", "recipe-plain",
            "cv-fold1", "cv-fold2", "cv-fold3", "cv-fold4", "size-16", "size-32", "size-96")


def command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tumorsearch validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run (default: the recipe's)")
    p.add_argument("--recipe", type=Path, default=checkpoint.SHIPPED, help="checkpoint whose recipe is validated")
    p.add_argument("--work", type=Path, default=Path("var/validation"), help="checkpoints of the runs")
    p.add_argument("--out", type=Path, default=Path("docs/results"), help="where the report goes")
    p.add_argument("--groups", default=",".join(GROUPS), help=f"subset of {','.join(GROUPS)}")
    p.add_argument("--checkpoint", type=Path, default=None, help="for robustness, t-SNE, examples")
    p.add_argument("--report-only", action="store_true", help="write the report from finished runs")
    args = p.parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "validate")
    groups = [g for g in args.groups.split(",") if g]
    if not (args.recipe / checkpoint.CARD).is_file():
        p.error(f"--recipe: expected a checkpoint folder holding {checkpoint.CARD}, found none in {args.recipe}")
    recipe = Recipe.read(args.recipe)
    args.recipe_epochs = recipe.config.epochs
    args.epochs = args.epochs or recipe.config.epochs
    runs = [r for r in validation_runs(args.epochs, recipe.config) if r.group in groups]
    device, args.precision = pick_device(settings.device), settings.precision
    data = load_figshare(settings.figshare_dir, runs[0].config.size if runs else 128)
    if not args.report_only:
        trained = [run for name, run in unique_runs(runs).items() if name == run.name]
        trained.sort(key=lambda run: PRIORITY.index(run.name) if run.name in PRIORITY else len(PRIORITY))
        for run in trained:
            train_and_evaluate(run, data, args.work, device, recipe, args.precision)
    results = {r.name: _read(args.work / unique_runs(runs)[r.name].name / "eval.json") for r in runs}
    write_report(runs, results, args, data, device)
    return 0


@dataclass(frozen=True)
class Recipe:
    """The checkpoint whose recipe is validated: its folder, the configuration it was trained with (from
    its card), and its mask rule."""
    folder: Path
    trained: TrainConfig
    mask_rule: MaskRule

    @classmethod
    def read(cls, folder: Path) -> "Recipe":
        card = json.loads((folder / checkpoint.CARD).read_text())
        return cls(folder, TrainConfig.from_json(card["config"]), MaskRule.from_card(card))

    @property
    def config(self) -> TrainConfig:
        """The recipe open to any test fold: its fold choice cleared."""
        return replace(self.trained, train_folds=(), test_fold=5)

    def is_trained_by(self, config: TrainConfig) -> bool:
        """True when `config` is exactly the run that made the recipe checkpoint (same folds and length)."""
        return self.trained.same_run(config)


def train_and_evaluate(run, data, work: Path, device: torch.device, recipe: Recipe, precision: str = "auto") -> None:
    folder = work / run.name
    result_path = folder / "eval.json"
    if result_path.is_file():
        return
    print(f"== {run.name}: {run.label} ({run.config.epochs} epochs, test fold {run.config.test_fold})", flush=True)
    source = recipe.folder if recipe.is_trained_by(run.config) else folder
    if source == folder:
        train(run.config, data, folder, device, code_version(), on_epoch=_print_epoch, precision=precision)
    model, card = checkpoint.load(source, device, precision)
    # The rule is part of the recipe: every run is judged by the mask rule the recipe ships with.
    model.mask_rule = recipe.mask_rule
    result = evaluate(model, data, run.config.test_fold, device)
    result.update(epochs=card["epochs_done"], model_version=card["model_version"], checkpoint=str(source),
                  mask_rule=recipe.mask_rule.to_json())
    folder.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"   mAP expert {result['map_expert_box']:.4f} auto {result['map_auto_box']:.4f} "
          f"dice {result['dice']:.4f}", flush=True)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _print_epoch(history: dict) -> None:
    print(f"   epoch {history['epoch']}: loss {history['loss']:.4f} ({history['seconds']} s, {history['precision']})",
          flush=True)
