"""The Dice breakdown on hand-made masks whose figures are known."""

import numpy as np
import pytest

from shared.model.dice_report import dice_breakdown, failure_list

pytestmark = pytest.mark.unit


def _square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_mean_pooled_failures_and_nothing_predicted():
    expert = np.stack([_square(16, 0, 0, 4), _square(16, 0, 0, 8), _square(16, 0, 0, 2)])
    predicted = np.stack([_square(16, 0, 0, 4),          # exact: Dice 1
                          _square(16, 0, 0, 4),          # a quarter of the area: 2*16/(16+64) = 0.4
                          np.zeros((16, 16), bool)])      # nothing: Dice 0, a failure
    report = dice_breakdown(predicted, expert, np.array([0, 1, 1]))
    assert report["all"]["dice"] == pytest.approx((1 + 0.4 + 0) / 3, abs=1e-4)
    assert report["all"]["dice_pooled"] == pytest.approx(2 * (16 + 16) / (32 + 64 + 16 + 4), abs=1e-4)
    assert (report["all"]["failed"], report["all"]["nothing_predicted"]) == (1, 1)
    glioma = report["by_type"]["glioma"]
    assert glioma["images"] == 2 and glioma["dice"] == pytest.approx(0.2, abs=1e-4)
    assert "pituitary" not in report["by_type"], "a type without images gets no row"


def test_a_wrong_place_is_a_failure_but_not_nothing_predicted():
    expert = np.stack([_square(16, 0, 0, 4)])
    report = dice_breakdown(np.stack([_square(16, 10, 10, 4)]), expert, np.array([2]))
    assert (report["all"]["failed"], report["all"]["nothing_predicted"]) == (1, 0)


def test_area_quartiles_split_a_type_by_expert_area():
    sides = [2, 3, 4, 5, 6, 7, 8, 9]
    expert = np.stack([_square(16, 0, 0, s) for s in sides])
    report = dice_breakdown(expert.copy(), expert, np.zeros(len(sides), int))
    quartiles = report["by_type"]["meningioma"]["area_quartiles"]
    assert [q["images"] for q in quartiles] == [2, 2, 2, 2]
    assert quartiles[0]["area_px"][0] == 4 and quartiles[-1]["area_px"][1] == 81
    assert all(q["dice"] == 1.0 for q in quartiles)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        dice_breakdown(np.zeros((2, 8, 8), bool), np.zeros((2, 8, 9), bool), np.zeros(2, int))


def test_failure_list_names_each_failed_image_and_how_it_failed():
    expert = np.stack([_square(16, 0, 0, 4)] * 4)
    predicted = np.stack([_square(16, 0, 0, 4),             # exact: not a failure
                          np.zeros((16, 16), bool),          # nothing drawn
                          _square(16, 10, 10, 4),            # drawn only elsewhere
                          _square(16, 3, 3, 10)])            # 1 pixel of 16 shared with 100: Dice 0.017
    probability = np.zeros((4, 16, 16), np.float32)
    probability[1, 1, 1] = 0.3                               # seen inside the expert mask, below threshold
    rows = failure_list(predicted, expert, probability, np.array([0, 1, 1, 2]), np.array([40, 30, 20, 10]))
    assert [r["image_id"] for r in rows] == [10, 20, 30], "failures only, by image id"
    by_id = {r["image_id"]: r for r in rows}
    assert by_id[30]["kind"] == "nothing predicted" and by_id[30]["peak_probability_inside"] == pytest.approx(0.3)
    assert by_id[20]["kind"] == "elsewhere" and by_id[20]["predicted_area_px"] == 16
    assert by_id[10]["kind"] == "overlap" and by_id[10]["dice"] == pytest.approx(2 / 116, abs=1e-4)
    assert by_id[10]["type"] == "pituitary" and by_id[10]["expert_area_px"] == 16


def test_failure_list_refuses_probabilities_of_another_grid():
    masks = np.zeros((1, 8, 8), bool)
    with pytest.raises(ValueError, match="one shape"):
        failure_list(masks, masks, np.zeros((1, 16, 16)), np.zeros(1, int), np.ones(1, int))
