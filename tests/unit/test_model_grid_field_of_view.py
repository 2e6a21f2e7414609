"""The worker's slice grid: small fields of view are padded with background up to the smallest field the
network is shown; wider ones are left exactly as the input multiple pads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from services.worker.runtime import Runtime
from shared.model.network import PisovNet
from shared.model.series_inference import MIN_FIELD_OF_VIEW_MM, PAD_VALUE, model_grid, prepare_slices

MODEL_MM, MULTIPLE = 1.96, 16


def test_a_125_mm_field_is_padded_to_200_mm_rounded_up_to_the_input_multiple():
    grid = model_grid(256, 256, (0.49, 0.49), MODEL_MM, MULTIPLE, MIN_FIELD_OF_VIEW_MM)
    assert grid.shape == (64, 64) and grid.padded == (112, 112)
    assert grid.scale == (4.0, 4.0), "the slice itself keeps its true scale"


@pytest.mark.parametrize(("rows", "spacing", "padded"), [(512, 0.39, 112), (240, 1.0, 128), (512, 0.98, 256)])
def test_fields_of_200_mm_and_more_are_padded_as_before(rows, spacing, padded):
    framed = model_grid(rows, rows, (spacing, spacing), MODEL_MM, MULTIPLE, MIN_FIELD_OF_VIEW_MM)
    bare = model_grid(rows, rows, (spacing, spacing), MODEL_MM, MULTIPLE)
    assert framed == bare and framed.padded == (padded, padded)


def test_each_side_is_padded_on_its_own():
    grid = model_grid(256, 512, (0.49, 0.49), MODEL_MM, MULTIPLE, MIN_FIELD_OF_VIEW_MM)
    assert grid.shape == (64, 128) and grid.padded == (112, 128)


def test_the_slice_sits_top_left_with_background_beyond():
    grid = model_grid(256, 256, (0.49, 0.49), MODEL_MM, MULTIPLE, MIN_FIELD_OF_VIEW_MM)
    image = np.random.default_rng(0).uniform(0, 1000, (1, 256, 256)).astype(np.float32)
    prepared = prepare_slices(image, grid)
    assert prepared.shape == (1, 112, 112)
    assert (prepared[0, :64, :64] != PAD_VALUE).mean() > 0.9
    assert (prepared[0, 64:, :] == PAD_VALUE).all() and (prepared[0, :, 64:] == PAD_VALUE).all()


def test_a_negative_smallest_field_is_refused():
    with pytest.raises(ValueError, match=r"smallest field: zero or more.*smallest field -1.0"):
        model_grid(256, 256, (0.49, 0.49), MODEL_MM, MULTIPLE, -1.0)


def test_the_worker_runtime_frames_small_fields():
    model = PisovNet(channels=16, blocks=1, mask_levels=2)
    runtime = Runtime(model, {"architecture": {"spacing_mm": MODEL_MM}}, torch.device("cpu"))
    assert runtime.slice_grid(256, 256, (0.49, 0.49)).padded == (112, 112)
    assert runtime.slice_grid(240, 240, (1.0, 1.0)).padded == (128, 128)
