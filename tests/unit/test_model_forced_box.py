"""The diagnostic 'forced' box of evaluation: the automatic box unless nothing passed the threshold."""

import numpy as np
import pytest

from shared.model.inference import _forced_boxes, largest_component_box

pytestmark = pytest.mark.unit


def test_an_image_below_the_threshold_takes_the_region_around_its_most_likely_pixel():
    probability = np.zeros((3, 16, 16), np.float32)
    probability[0, 2:6, 3:9] = 0.9                       # found by the plain rule
    probability[1, 10:13, 4:7] = 0.3                     # nothing passes 0.5
    probability[1, 11, 5] = 0.35
    probability[1, 0:2, 0:2] = 0.1                       # below half the maximum: not part of it
    auto = np.array([largest_component_box(p > 0.5) or (-1,) * 4 for p in probability])
    forced = _forced_boxes(auto, probability)
    assert tuple(forced[0]) == tuple(auto[0]) == (2, 3, 6, 9)
    assert tuple(auto[1]) == (-1,) * 4 and tuple(forced[1]) == (10, 4, 13, 7)
    assert tuple(forced[2]) == (-1,) * 4, "an image with no probability anywhere stays without a box"


def test_the_largest_component_alone_is_the_tumour_the_box_is_drawn_around():
    from shared.model.inference import largest_component

    mask = np.zeros((16, 16), bool)
    mask[1:3, 1:3] = True                                # 4 px
    mask[8:12, 6:11] = True                              # 20 px: the largest
    kept = largest_component(mask)
    assert kept.sum() == 20 and kept[8:12, 6:11].all() and not kept[1:3, 1:3].any()
    assert largest_component_box(kept) == largest_component_box(mask) == (8, 6, 12, 11)
    assert not largest_component(np.zeros((4, 4), bool)).any()
