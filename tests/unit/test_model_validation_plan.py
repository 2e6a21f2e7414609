import numpy as np
import pytest

from services.modeling.experiments import unique_runs, validation_runs
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
