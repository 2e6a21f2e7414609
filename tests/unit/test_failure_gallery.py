"""The failure gallery draws one outlined panel per failed image and refuses what it cannot draw."""

import numpy as np
import pytest
from PIL import Image

from services.modeling.failure_gallery import failure_gallery
from shared.model.dice_report import failure_list

pytestmark = pytest.mark.unit


def _case(count: int):
    images = np.linspace(-1, 1, 32 * 32, dtype=np.float32).reshape(32, 32)[None].repeat(count, 0)
    expert = np.zeros((count, 32, 32), bool)
    expert[:, 4:12, 4:12] = True
    predicted = np.zeros_like(expert)
    predicted[:, 20:28, 20:28] = True          # every image: drawn elsewhere, a failure
    ids = np.arange(100, 100 + count)
    failures = failure_list(predicted, expert, predicted.astype(np.float32), np.ones(count, int), ids)
    return images, expert, predicted, ids, failures


def test_the_gallery_draws_every_failure_with_both_outlines(tmp_path):
    images, expert, predicted, ids, failures = _case(3)
    path = tmp_path / "failures.png"
    assert failure_gallery(images, expert, predicted, ids, failures, path, columns=2) == 3
    colours = {rgb for _, rgb in Image.open(path).convert("RGB").getcolors(maxcolors=1 << 16)}
    assert (0, 255, 0) in colours, "the expert's outline is drawn in green"
    assert (255, 0, 0) in colours, "the model's outline is drawn in red"


def test_the_gallery_grows_with_the_number_of_failures(tmp_path):
    images, expert, predicted, ids, failures = _case(6)
    failure_gallery(images, expert, predicted, ids, failures[:2], tmp_path / "two.png", columns=2)
    failure_gallery(images, expert, predicted, ids, failures, tmp_path / "six.png", columns=2)
    two, six = Image.open(tmp_path / "two.png").size, Image.open(tmp_path / "six.png").size
    assert two[0] == six[0] and six[1] > 2 * two[1], "one row of two panels against three rows"


def test_nothing_to_draw_or_an_unknown_image_is_refused(tmp_path):
    images, expert, predicted, ids, failures = _case(2)
    with pytest.raises(ValueError, match="at least one failed image"):
        failure_gallery(images, expert, predicted, ids, [], tmp_path / "none.png")
    with pytest.raises(ValueError, match="missing"):
        failure_gallery(images, expert, predicted, ids[:1], failures, tmp_path / "bad.png")
