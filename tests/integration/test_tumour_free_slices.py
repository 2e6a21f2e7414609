"""The tumour-free slice check of `tumorsearch calibrate --volumes` on a real labelled volume (TCGA-GBM
brain1, 25 axial slices, the enhancing tumour labelled) with the shipped model."""

import numpy as np
import pytest
import torch

from shared.model import checkpoint
from shared.model.mask_rule import MaskRule
from shared.model.tumour_free import MARGIN_SLICES, SHARED_VOLUMES, load_check_volume, score_volumes, \
    slices_with_a_finding

pytestmark = pytest.mark.integration
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def brain1(data_dir):
    model, card = checkpoint.load(checkpoint.SHIPPED)
    image, mask = (data_dir / p for p in SHARED_VOLUMES[0])
    return model, load_check_volume(image, mask, card["architecture"]["spacing_mm"], model.input_multiple)


def test_tumour_free_slices_keep_their_distance_from_the_lesion(brain1):
    _, volume = brain1
    lesion = np.flatnonzero(volume.lesion)
    free = np.flatnonzero(volume.tumour_free)
    assert len(lesion) == 7 and len(free) > 5 and len(volume.prepared) == 25
    assert min(abs(f - lesion).min() for f in free) > MARGIN_SLICES


def test_the_lesion_is_found_and_a_lower_threshold_never_finds_less(brain1):
    model, volume = brain1
    strict = slices_with_a_finding(model, volume, MaskRule(0.9), CPU)
    loose = slices_with_a_finding(model, volume, MaskRule(0.2), CPU)
    assert (strict <= loose).all()
    assert loose[volume.lesion].sum() >= 3, "the enhancing GBM is visible on most of its slices"
    row, = score_volumes(model, [volume], [MaskRule(0.2)], CPU)
    assert row["lesion_slices"] == 7 and row["lesion_slices_found"] == int(loose[volume.lesion].sum())
    assert row["false_positive_slices"] == int(loose[volume.tumour_free].sum())
