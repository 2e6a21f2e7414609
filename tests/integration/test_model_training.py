"""A tiny model trained for a few steps on real figshare images: the loss falls, the run resumes, and
evaluate produces every figure. Full-size training never runs in CI."""

import json

import pytest
import torch

from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.device import precision_name
from shared.model.evaluation import evaluate
from shared.model.figshare import load_figshare
from shared.model.training import train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_data(data_dir):
    data = load_figshare(data_dir / "figshare-cetumor", size=64, progress=False)
    keep = torch.Generator().manual_seed(0)
    index = torch.randperm(len(data), generator=keep)[:240].numpy()
    return data.select(index)


def test_loss_falls_and_a_seed_repeats_the_run(tiny_data, tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=64, epochs=4, batch_size=16, lr=3e-3)
    card = train(config, tiny_data, tmp_path / "a", torch.device("cpu"), "test", progress=False)
    losses = [h["loss"] for h in card["history"]]
    assert losses[-1] < losses[0] * 0.8, losses
    assert card["complete"] and card["model_version"].startswith("pisov2d-c16-")
    # Each epoch says which arithmetic ran it: bf16 where this CPU has it natively, else fp32.
    assert {h["precision"] for h in card["history"]} == {precision_name(torch.device("cpu"))}

    again = train(config, tiny_data, tmp_path / "b", torch.device("cpu"), "test", progress=False)
    assert [h["loss"] for h in again["history"]] == losses, "same seed, same data: the same run"


def _stop_after(history, epoch):
    if history["epoch"] == epoch:
        raise KeyboardInterrupt


def test_resume_continues_from_the_last_epoch(tiny_data, tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=64, epochs=3, batch_size=16)
    with pytest.raises(KeyboardInterrupt):
        train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False,
              on_epoch=lambda h: _stop_after(h, 2))
    assert json.loads((tmp_path / checkpoint.CARD).read_text())["epochs_done"] == 2
    card = train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False)
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3]
    uninterrupted = train(config, tiny_data, tmp_path / "clean", torch.device("cpu"), "test", progress=False)
    assert card["history"][-1]["loss"] == pytest.approx(uninterrupted["history"][-1]["loss"], rel=1e-3)


def test_an_averaged_run_ships_the_average_and_resumes_from_the_live_weights(tiny_data, tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=64, epochs=3, batch_size=16, weight_average=0.95, reframe=0.5)
    with pytest.raises(KeyboardInterrupt):
        train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False,
              on_epoch=lambda h: _stop_after(h, 2))
    state = torch.load(tmp_path / checkpoint.STATE, weights_only=False)
    shipped = torch.load(tmp_path / checkpoint.WEIGHTS, weights_only=True)
    first = next(iter(shipped))
    assert not torch.equal(shipped[first], state["live_weights"][first]), "the checkpoint holds the average"
    card = train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False)
    uninterrupted = train(config, tiny_data, tmp_path / "clean", torch.device("cpu"), "test", progress=False)
    assert card["history"][-1]["loss"] == pytest.approx(uninterrupted["history"][-1]["loss"], rel=1e-3)
    resumed = torch.load(tmp_path / checkpoint.WEIGHTS, weights_only=True)
    clean = torch.load(tmp_path / "clean" / checkpoint.WEIGHTS, weights_only=True)
    assert all(torch.allclose(resumed[k].float(), clean[k].float(), atol=1e-4) for k in clean), \
        "resuming continues the same average"


def test_a_run_with_a_metric_memory_resumes_with_the_same_memory(tiny_data, tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=64, epochs=3, batch_size=8, metric_memory=24)
    with pytest.raises(KeyboardInterrupt):
        train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False,
              on_epoch=lambda h: _stop_after(h, 2))
    saved = torch.load(tmp_path / checkpoint.STATE, weights_only=False)["metric_memory"]
    assert len(saved["labels"]) == 24 and saved["embeddings"].shape == (24, 16)
    card = train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False)
    uninterrupted = train(config, tiny_data, tmp_path / "clean", torch.device("cpu"), "test", progress=False)
    assert card["history"][-1]["metric"] == pytest.approx(uninterrupted["history"][-1]["metric"], rel=1e-3)
    resumed = torch.load(tmp_path / checkpoint.WEIGHTS, weights_only=True)
    clean = torch.load(tmp_path / "clean" / checkpoint.WEIGHTS, weights_only=True)
    assert all(torch.allclose(resumed[k].float(), clean[k].float(), atol=1e-4) for k in clean)


def test_evaluate_reports_every_figure(tiny_data, tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=64, epochs=1, batch_size=16)
    train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False)
    model, card = checkpoint.load(tmp_path)
    result = evaluate(model, tiny_data, 5, torch.device("cpu"))
    for key in ("map_expert_box", "p10_expert_box", "map_auto_box", "p10_auto_box", "dice",
                "spearman_distance_size", "map_forced_box"):
        assert 0 <= abs(result[key]) <= 1, key
    assert len(result["knn_accuracy"]["type"]) == 50
    assert set(result["dice_by_type"]) <= {"meningioma", "glioma", "pituitary"} and result["dice_by_type"]
    expanded = result["query_expansion"]
    assert expanded["neighbours"] == 10 and all(0 <= expanded[k] <= 1 for k in (
        "map_expert_box", "p10_expert_box", "map_auto_box", "p10_auto_box")), expanded
    mirrored = result["mirrored_tumour_free"]
    assert mirrored["slices"] > 0 and 0 <= mirrored["with_finding"] <= mirrored["slices"], mirrored


def test_calibration_scores_every_rule_on_the_validation_fold_only(tiny_data, tmp_path):
    from shared.model.calibration import best_rule, rule_grid, score_rules

    config = TrainConfig(channels=16, blocks=1, size=64, epochs=1, batch_size=16, train_folds=(1, 2, 3))
    card = train(config, tiny_data, tmp_path, torch.device("cpu"), "test", progress=False)
    assert card["train_folds"] == [1, 2, 3] and card["test_fold"] == 5
    model, _ = checkpoint.load(tmp_path)
    rows = score_rules(model, tiny_data, 4, card["train_folds"], torch.device("cpu"), rule_grid())
    assert len(rows) == 8 and best_rule(rows) in rows
    for flip in (False, True):
        found = [r["auto_box_found"] for r in rows if r["flip_average"] == flip]  # thresholds 0.5 .. 0.2
        assert found == sorted(found), "a lower threshold never finds fewer tumours"
    assert all(0 <= r["map_auto_box"] <= 1 and 0 <= r["dice"] <= 1 for r in rows)
    for flip in (False, True):  # the mirrored tumour-free slices of fold 4: a lower threshold never finds less
        findings = [r["mirrored_with_finding"] for r in rows if r["flip_average"] == flip]
        assert findings == sorted(findings) and rows[0]["mirrored_slices"] > 0, rows
    with pytest.raises(ValueError, match="outside the database folds"):
        score_rules(model, tiny_data, 3, card["train_folds"], torch.device("cpu"), rule_grid())


def test_train_folds_must_leave_out_the_test_fold():
    with pytest.raises(ValueError, match=r"without the test fold 5, found \[4, 5\]"):
        TrainConfig(train_folds=(4, 5))


def test_dice_command_breaks_down_each_checkpoint_and_their_average(tiny_data, data_dir, tmp_path, monkeypatch,
                                                                    capsys):
    from services.modeling.dice import command

    for seed in (0, 1):
        config = TrainConfig(channels=16, blocks=1, size=64, epochs=1, batch_size=16, seed=seed)
        train(config, tiny_data, tmp_path / f"m{seed}", torch.device("cpu"), "test", progress=False)
    monkeypatch.setenv("TUMORSEARCH_DATA_DIR", str(data_dir))
    out = tmp_path / "dice.json"
    assert command(["--checkpoint", str(tmp_path / "m0"), "--checkpoint", str(tmp_path / "m1"),
                    "--data", str(data_dir / "figshare-cetumor"), "--limit", "300", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["test_fold"] == 5 and report["images"] == 59, "fold 5 of the first 300 images"
    assert len(report["models"]) == 2 and report["ensemble"]["threshold"] == 0.5
    for row in report["models"] + [report["ensemble"]]:
        assert 0 <= row["all"]["dice"] <= 1 and 0 <= row["all"]["dice_pooled"] <= 1
        assert sum(t["images"] for t in row["by_type"].values()) == 59
    assert "average of all" in capsys.readouterr().out
    assert command(["--checkpoint", str(tmp_path / "m0"), "--data", str(data_dir / "figshare-cetumor"), "--limit",
                    "300", "--largest-component", "--json", str(out)]) == 0
    largest = json.loads(out.read_text())
    assert largest["largest_component"] and largest["models"][0]["all"]["images"] == 59
    gallery = tmp_path / "failures.png"
    assert command(["--checkpoint", str(tmp_path / "m0"), "--data", str(data_dir / "figshare-cetumor"), "--limit",
                    "300", "--data-grid", "--json", str(out), "--failures-png", str(gallery)]) == 0
    native = json.loads(out.read_text())
    assert native["grid"] == 256 and report["grid"] == 64 and native["models"][0]["all"]["images"] == 59
    assert 0 <= native["models"][0]["all"]["dice"] <= 1
    for row in report["models"] + [report["ensemble"]] + native["models"]:
        assert len(row["failures"]) == row["all"]["failed"], "every failed image is listed"
    assert gallery.is_file() == (native["models"][0]["all"]["failed"] > 0), "the gallery draws the failures"
