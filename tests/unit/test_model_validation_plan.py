import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from services.modeling import validate
from services.modeling.experiments import unique_runs, validation_runs
from services.modeling.report import _dice_by_type, _expansion_table, _where
from services.modeling.validate import Recipe
from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.device import precision_name
from shared.model.mask_rule import MaskRule
from shared.model.network import PisovNet
from shared.model.robustness import distort_boxes

pytestmark = pytest.mark.unit


def test_validation_covers_every_table_and_trains_shared_configurations_once():
    runs = validation_runs(epochs=3)
    groups = {r.group for r in runs}
    assert groups == {"cv", "sizes", "tasks", "recipe"}
    assert sorted(r.config.test_fold for r in runs if r.group == "cv") == [1, 2, 3, 4, 5]
    assert all(r.config.epochs == 3 for r in runs)
    aliases = unique_runs(runs)
    assert aliases["size-64"].name == "cv-fold5"  # the same configuration is trained once
    assert len({run.name for run in aliases.values()}) == 13


def test_task_ablation_differs_only_in_tasks():
    tasks = [r.config for r in validation_runs(epochs=3) if r.group == "tasks"]
    assert {c.metric_weight for c in tasks} == {0.0}
    assert {c.tasks for c in tasks} == {("segmentation",), ("type",), ("segmentation", "type"),
                                       ("segmentation", "type", "size", "horizontal", "vertical")}


def test_box_distortion_stays_in_the_image_within_the_fraction_and_keeps_missing_boxes():
    boxes = np.array([[40, 40, 80, 100], [-1, -1, -1, -1], [0, 0, 10, 10]])
    out = distort_boxes(boxes, 0.25, (128, 128), seed=3)
    assert (out[1] == -1).all()
    valid = out[[0, 2]]
    assert (valid[:, :2] >= 0).all() and (valid[:, 2:] <= 128).all() and (valid[:, 2:] > valid[:, :2]).all()
    height, width = 40, 60
    assert abs((out[0, 2] - out[0, 0]) - height) <= 0.25 * height + 2
    assert abs((out[0, 3] - out[0, 1]) - width) <= 0.25 * width + 2
    assert not (distort_boxes(boxes, 0.25, (128, 128), seed=4) == out).all()
    assert (distort_boxes(boxes, 0.0, (128, 128)) == boxes).all()


def _recipe_folder(tmp_path: Path, **changes) -> Path:
    config = replace(TrainConfig(bias_field=0.3, negatives=0.125, seg_weight=3.0, epochs=50), **changes)
    folder = tmp_path / "recipe"
    folder.mkdir()
    card = {"config": config.to_json(), "test_fold": config.test_fold, "model_version": "pisov2d-test",
            "epochs_done": config.epochs, "mask_rule": {"threshold": 0.2, "flip_average": True}}
    (folder / checkpoint.CARD).write_text(json.dumps(card))
    return folder


def test_validation_runs_the_recipe_of_the_checkpoint_and_recognises_the_run_that_made_it(tmp_path):
    recipe = Recipe.read(_recipe_folder(tmp_path))
    assert recipe.mask_rule == MaskRule(0.2, True)
    runs = {r.name: r for r in validation_runs(recipe.config.epochs, recipe.config)}
    assert {r.config.seg_weight for r in runs.values()} == {3.0}      # the recipe, not the library defaults
    assert runs["cv-fold1"].config.folds == (2, 3, 4, 5)
    assert [n for n, r in runs.items() if recipe.is_trained_by(r.config)] == ["cv-fold5", "size-64", "recipe-metric"]
    shorter = validation_runs(6, recipe.config)
    assert not any(recipe.is_trained_by(r.config) for r in shorter)


def test_the_recipe_checkpoint_is_evaluated_with_its_rule_not_trained_again(tmp_path, monkeypatch):
    folder = _recipe_folder(tmp_path)
    recipe = Recipe.read(folder)
    run = next(r for r in validation_runs(50, recipe.config) if r.name == "cv-fold5")
    loaded, judged = [], []

    def load(source, device, precision="auto"):
        loaded.append((source, precision))
        return PisovNet(channels=8), json.loads((source / checkpoint.CARD).read_text())

    monkeypatch.setattr(validate, "train", lambda *a, **k: pytest.fail("the recipe run was trained again"))
    monkeypatch.setattr(validate.checkpoint, "load", load)
    monkeypatch.setattr(validate, "evaluate", lambda model, *a: judged.append(model.mask_rule) or
                        {"map_expert_box": 0.9, "map_auto_box": 0.8, "dice": 0.7})
    validate.train_and_evaluate(run, data=None, work=tmp_path / "work", device="cpu", recipe=recipe,
                                precision="fp32")
    result = json.loads((tmp_path / "work" / "cv-fold5" / "eval.json").read_text())
    assert loaded == [(folder, "fp32")] and judged == [MaskRule(0.2, True)]
    assert result["model_version"] == "pisov2d-test" and result["epochs"] == 50
    assert result["mask_rule"] == {"threshold": 0.2, "flip_average": True}


def test_report_says_which_rule_judged_the_runs_and_gives_dice_by_type():
    rows = [("test fold 1", {"dice_by_type": {"glioma": 0.5, "pituitary": 0.8}, "auto_box_found": 0.97}),
            ("test fold 2", {})]
    table = _dice_by_type(rows)
    assert table[2] == "| run | glioma | pituitary | automatic box found |"
    assert table[4] == "| test fold 1 | 0.5000 | 0.8000 | 97.0% |" and table[5] == "| test fold 2 | — | — | — |"


def test_report_names_the_arithmetic_the_network_ran_in_here():
    # Not "bf16" on every CPU: one without native bf16 runs fp32 (shared/model/device.py).
    where = _where(torch.device("cpu"))
    assert where.endswith(f"CPU without GPU (the network in {precision_name(torch.device('cpu'))})"), where
    assert _where(torch.device("cpu"), "fp32").endswith("(the network in fp32)")
    assert _where(torch.device("cpu"), "bf16").endswith("(the network in bf16)")


def test_the_expansion_table_gives_each_fold_and_the_mean_of_those_evaluated_with_it():
    expanded = [{"neighbours": 10, "map_expert_box": m, "p10_expert_box": 0.9, "map_auto_box": 0.8,
                 "p10_auto_box": 0.7} for m in (0.96, 0.98)]
    rows = [("test fold 1", {"query_expansion": expanded[0]}), ("test fold 2", {}),
            ("test fold 3", {"query_expansion": expanded[1]})]
    table = _expansion_table(rows)
    assert table[0].startswith("With query expansion (10 neighbours)")
    assert table[4] == "| test fold 1 | 0.9600 | 0.9000 | 0.8000 | 0.7000 |" and table[5].count("—") == 4
    assert table[7].startswith("| **mean ± sd** (2 folds) | 0.9700 ± 0.0141 | 0.9000 ± 0.0000 |")
