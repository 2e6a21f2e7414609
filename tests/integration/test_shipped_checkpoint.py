"""The committed checkpoint loads, segments real figshare images where the experts drew the tumour,
and names the type of clear cases. Fold 5 was never seen in its training."""

import json

import numpy as np
import pytest
import torch

from shared.model import checkpoint
from shared.model.evaluation import expert_boxes
from shared.model.figshare import load_figshare
from shared.model.inference import predict
from shared.model.retrieval import dice_scores
from shared.model.tasks import TUMOR_TYPES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shipped():
    model, card = checkpoint.load(checkpoint.SHIPPED)
    return model, card


@pytest.fixture(scope="module")
def fold5_sample(data_dir, shipped):
    _, card = shipped
    data = load_figshare(data_dir / "figshare-cetumor", card["architecture"]["input_size"], progress=False)
    test = data.folds_in([5])
    # 8 per type spread over the fold: its images come patient by patient, so the first 8 of a type
    # would be one or two patients.
    pick = np.concatenate([_spread(np.flatnonzero(test.types == t), 8) for t in range(3)])
    return test.select(pick)


def _spread(index: np.ndarray, count: int) -> np.ndarray:
    return index[np.linspace(0, len(index) - 1, count).round().astype(int)]


def test_the_card_describes_an_honest_fold5_test_and_the_size_limit(shipped):
    _, card = shipped
    assert card["train_folds"] == [1, 2, 3, 4] and card["test_fold"] == 5
    assert card["complete"] and card["model_version"].startswith("pisov2d-")
    size = (checkpoint.SHIPPED / checkpoint.WEIGHTS).stat().st_size
    assert size < 20 * 2**20, f"expected a checkpoint under 20 MB, found {size} bytes"
    assert json.loads((checkpoint.SHIPPED / checkpoint.CARD).read_text())["metrics"]["map_expert_box"] >= 0.95


def test_the_mask_rule_was_chosen_without_the_test_fold(shipped):
    model, card = shipped
    chosen_by = card["mask_rule"]["chosen_by"]
    assert chosen_by["fold"] != card["test_fold"] and card["test_fold"] not in chosen_by["train_folds"]
    assert model.mask_rule.threshold == card["mask_rule"]["threshold"] == card["metrics"]["mask_rule"]["threshold"]


def test_masks_overlap_the_expert_masks_and_clear_cases_get_their_type(shipped, fold5_sample):
    model, _ = shipped
    sample = fold5_sample
    pred = predict(model, sample.images, expert_boxes(sample.masks), torch.device("cpu"))
    dice = dice_scores(pred.masks, sample.masks)
    assert np.median(dice) > 0.7, dice.round(2)
    probs = pred.probabilities["type"]
    confident = probs.max(1) > 0.9
    assert confident.sum() >= 12, "expected most of 24 clear fold-5 cases to be confident"
    correct = probs.argmax(1) == sample.types
    assert correct[confident].mean() >= 0.9, [TUMOR_TYPES[i] for i in probs.argmax(1)]
