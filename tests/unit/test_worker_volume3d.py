"""The 3D path's geometry: a model-grid box maps back onto the source voxels it came from, for any
orientation of the series (axial, flipped rows, sagittal)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from services.worker.volume import Volume
from services.worker.volume3d import prepare_volume, source_box, source_labels_3d
from services.worker.tumours import Tumour

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
