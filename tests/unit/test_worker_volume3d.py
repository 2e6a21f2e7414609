"""The worker's geometry: a model-grid box maps back onto the source voxels it came from, for any
orientation of the series (axial, flipped rows, sagittal), and every tumour found on the model grid has
voxels on the source grid, however coarse the source."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from services.worker.volume import Volume
from services.worker.volume3d import prepare_volume, source_box, source_labels_3d
from services.worker.tumours import Tumour, source_labels
from shared.model.series_inference import ModelGrid, SeriesPrediction

CUBE = (slice(4, 9), slice(20, 34), slice(30, 44))  # slices, rows, columns of the source volume


def volume(affine: np.ndarray) -> Volume:
    pixels = np.full((12, 60, 72), 100.0, np.float32)
    pixels[CUBE] = 1000.0
    spacing = tuple(float(np.linalg.norm(affine[:3, a])) for a in (1, 0, 2))
    return Volume(pixels, affine, spacing, [(k, 0) for k in range(12)])


def affine(columns, rows, normal, spacing=(0.9, 0.8, 5.0)) -> np.ndarray:
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2] = (np.array(v, float) * s for v, s in zip((columns, rows, normal), spacing))
    a[:3, 3] = (-30.0, 20.0, 10.0)
    return a


@pytest.mark.parametrize("geometry", [
    affine((1, 0, 0), (0, 1, 0), (0, 0, 1)),    # axial
    affine((1, 0, 0), (0, -1, 0), (0, 0, -1)),  # rows towards anterior, slices downwards
    affine((0, 1, 0), (0, 0, -1), (1, 0, 0)),   # sagittal
])
def test_a_bright_cube_maps_back_onto_its_source_voxels(geometry):
    source = volume(geometry)
    prepared, grid = prepare_volume(source, spacing_mm=2.0)
    bright = prepared[tuple(slice(0, n) for n in grid.shape)] > 0.5
    labels, _ = ndimage.label(bright)
    d, h, w = ndimage.find_objects(labels)[0]
    box = source_box((d.start, h.start, w.start, d.stop, h.stop, w.stop), grid, source.pixels.shape)
    expected = (CUBE[0].start, CUBE[1].start, CUBE[2].start, CUBE[0].stop, CUBE[1].stop, CUBE[2].stop)
    # Resampling to 2 mm blurs edges by up to one coarse voxel (≤ 2.5 source voxels in-plane, 1 slice).
    assert np.allclose(box, expected, atol=3), (box, expected)
    tumour = Tumour(0, (0,) * 6, box, np.zeros(4), {}, 0.0, 1, (0.0, 0.0, 0.0), {}, bright)
    back = source_labels_3d([tumour], grid, source.pixels.shape) == 1
    truth = np.zeros(source.pixels.shape, bool)
    truth[CUBE] = True
    assert 2 * (back & truth).sum() / (back.sum() + truth.sum()) > 0.7


def test_the_volume_is_padded_with_background_to_the_models_input_multiple():
    source = volume(affine((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    prepared4, grid = prepare_volume(source, spacing_mm=2.0)
    prepared16, grid16 = prepare_volume(source, spacing_mm=2.0, multiple=16)
    assert grid16.shape == grid.shape and all(n % 16 == 0 for n in prepared16.shape)
    inside = tuple(slice(0, n) for n in grid.shape)
    assert np.array_equal(prepared16[inside], prepared4[inside])
    outside = np.ones(prepared16.shape, bool)
    outside[inside] = False
    assert (prepared16[outside] == -1.0).all()


def test_a_tumour_between_thick_source_slices_still_reaches_the_seg():
    """6.5 mm slices sampled from a 5 mm model grid skip some model slices; a tumour confined to one of them
    must still be in the label volume (the SEG refuses a segment with no voxels: CI, 2026-12-06)."""
    source = volume(affine((1, 0, 0), (0, 1, 0), (0, 0, 1), spacing=(0.9, 0.8, 6.5)))
    _, grid = prepare_volume(source, spacing_mm=5.0)
    inverse = np.linalg.inv(grid.to_source)
    sampled = {int(np.rint(inverse @ [30, 30, k, 1])[0]) for k in range(source.pixels.shape[0])}
    skipped = [d for d in range(grid.shape[0]) if d not in sampled]
    assert skipped, f"expected a model slice no source slice samples; found all sampled: {sorted(sampled)}"
    component = np.zeros(grid.shape, bool)
    component[skipped[0], 5:8, 6:9] = True
    tumour = Tumour(0, (0,) * 6, (0,) * 6, np.zeros(4), {}, 0.0, 9, (0.0, 0.0, 0.0), {}, component)
    labels = source_labels_3d([tumour], grid, source.pixels.shape)
    k, row, col = np.nonzero(labels == 1)
    centre = grid.to_source @ [skipped[0], 6, 7, 1]
    assert set(k) <= {int(np.floor(centre[2])), int(np.ceil(centre[2]))}, "expected the slices beside it"
    assert abs(row.mean() - centre[1]) < 2 and abs(col.mean() - centre[0]) < 2
    # Its footprint, not dots: 3 x 3 model voxels of 5 mm over 0.8 x 0.9 mm source pixels, per slice.
    assert (labels[k[0]] == 1).sum() >= 0.8 * (15 / 0.8) * (15 / 0.9), (labels[k[0]] == 1).sum()


def test_a_missed_tumour_never_erases_another_one():
    """Two tiny tumours that only one coarse source pixel can show: the second takes a pixel of the first only
    where the first keeps another one, so neither vanishes from the SEG when both can be shown."""
    grid = ModelGrid(shape=(8, 8), padded=(8, 8), scale=(0.5, 0.5), spacing_mm=1.0)
    prediction = SeriesPrediction(np.zeros((1, 8, 8), np.float32), torch.zeros(1, 1, 2, 2), grid)
    first, second = np.zeros((1, 8, 8), bool), np.zeros((1, 8, 8), bool)
    first[0, 2, 4] = first[0, 2, 6] = True   # sampled: source pixels (1, 2) and (1, 3)
    second[0, 3, 5] = True                   # skipped: its footprint is source pixel (1, 2) only
    tumours = [Tumour(i, (0,) * 6, (0,) * 6, np.zeros(4), {}, 0.0, 1, (0.0, 0.0, 0.0), {}, c)
               for i, c in enumerate((first, second))]
    labels = source_labels(tumours, prediction, (1, 4, 4))
    assert {int(v) for v in np.unique(labels)} == {0, 1, 2}, labels


def test_a_tumour_between_source_pixels_of_a_coarse_slice_still_reaches_the_seg():
    """In-plane the same: a 4-px source slice on an 8-px model grid samples only every other model pixel."""
    grid = ModelGrid(shape=(8, 8), padded=(8, 8), scale=(0.5, 0.5), spacing_mm=1.0)
    prediction = SeriesPrediction(np.zeros((1, 8, 8), np.float32), torch.zeros(1, 1, 2, 2), grid)
    component = np.zeros((1, 8, 8), bool)
    component[0, 3, 5] = True  # model pixel (3, 5): source rows/columns sample model pixels 0, 2, 4, 6 only
    tumour = Tumour(0, (0,) * 6, (0,) * 6, np.zeros(4), {}, 0.0, 1, (0.0, 0.0, 0.0), {}, component)
    labels = source_labels([tumour], prediction, (1, 4, 4))
    assert [tuple(int(v) for v in p) for p in zip(*np.nonzero(labels == 1))] == [(0, 1, 2)]
