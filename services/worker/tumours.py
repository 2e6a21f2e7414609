"""Tumours = connected components of the predicted mask above a minimum size, each with its box, RoiPool
embedding, predicted type probabilities, size, centroid in patient coordinates and coarse location.

Components are found on the model's grid (where the mask was predicted) and numbered largest first, so
tumour 0 is the main lesion and a re-sent study numbers its tumours the same way (stable point ids).
On one slice the components are 4-connected, as in `tumorsearch evaluate`'s automatic box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from services.worker.volume import Volume
from shared.model.network import PisovNet
from shared.model.series_inference import ModelGrid, SeriesPrediction, embed_box

MIDLINE_MM = 5.0          # a centroid this close to the head's centre is "midline"/"central"
RESOLVABLE_MM = 30.0      # a patient axis the volume spans less than this is "unknown" (e.g. one slice)


@dataclass(frozen=True)
class SizeLimits:
    min_area_mm2: float     # single-slice studies
    min_volume_mm3: float   # volumes


@dataclass(frozen=True)
class Tumour:
    index: int
    model_box: tuple[int, int, int, int, int, int]    # k0, y0, x0, k1, y1, x1 on the model grid
    source_box: tuple[int, int, int, int, int, int]   # the same in source voxels (slice, row, column)
    embedding: np.ndarray
    probabilities: dict[str, np.ndarray]
    size_mm3: float
    voxels: int
    centroid_mm: tuple[float, float, float]
    location: dict[str, str]   # hemisphere, anterior_posterior, superior_inferior
    component: np.ndarray      # (K, h, w) bool on the model grid


def find_tumours(model: PisovNet, volume: Volume, prediction: SeriesPrediction, limits: SizeLimits) -> list[Tumour]:
    mask = prediction.probabilities > model.mask_rule.threshold
    labels, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
    if count == 0:
        return []
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    grid = prediction.grid
    voxel_mm3 = grid.spacing_mm ** 2 * volume.spacing_mm[2]
    single = volume.slices == 1
    keep = [label for label in np.argsort(-sizes, kind="stable") + 1
            if (sizes[label - 1] * grid.spacing_mm ** 2 if single else sizes[label - 1] * voxel_mm3)
            >= (limits.min_area_mm2 if single else limits.min_volume_mm3)]
    head = head_centre(volume)
    return [_tumour(i, labels == label, model, volume, prediction, voxel_mm3, head) for i, label in enumerate(keep)]


def _tumour(index: int, component: np.ndarray, model: PisovNet, volume: Volume, prediction: SeriesPrediction,
            voxel_mm3: float, head: np.ndarray) -> Tumour:
    ks, ys, xs = np.nonzero(component)
    box = (int(ks.min()), int(ys.min()), int(xs.min()), int(ks.max()) + 1, int(ys.max()) + 1, int(xs.max()) + 1)
    embedding, probabilities = embed_box(model, prediction.coarse, box)
    sy, sx = prediction.grid.scale
    source_box = (box[0], int(np.floor(box[1] * sy)), int(np.floor(box[2] * sx)), box[3],
                  min(volume.pixels.shape[1], int(np.ceil(box[4] * sy))),
                  min(volume.pixels.shape[2], int(np.ceil(box[5] * sx))))
    # Centre of a model pixel y in source rows: (y + 0.5) * scale - 0.5.
    centroid = volume.to_patient(float(ks.mean()), (float(ys.mean()) + 0.5) * sy - 0.5,
                                 (float(xs.mean()) + 0.5) * sx - 0.5)
    return Tumour(index, box, source_box, embedding, probabilities, round(float(len(ks) * voxel_mm3), 3),
                  int(len(ks)), tuple(round(float(c), 2) for c in centroid), describe_location(volume, centroid, head),
                  component)


def head_centre(volume: Volume) -> np.ndarray:
    """Patient coordinates of the centroid of the head (voxels brighter than a tenth of the 99th
    percentile): the reference for left/right, anterior/posterior and superior/inferior."""
    pixels = volume.pixels
    threshold = 0.1 * float(np.percentile(pixels, 99))
    ks, rows, cols = np.nonzero(pixels > threshold)
    if len(ks) == 0:
        ks, rows, cols = (np.array([(n - 1) / 2]) for n in pixels.shape)
    return volume.to_patient(float(ks.mean()), float(rows.mean()), float(cols.mean()))


def patient_extent(volume: Volume) -> np.ndarray:
    """How far the volume reaches along each patient axis (L, P, S), in mm."""
    k, r, c = (n - 1 for n in volume.pixels.shape)
    corners = np.array([volume.to_patient(a, b, d) for a in (0, k) for b in (0, r) for d in (0, c)])
    return corners.max(axis=0) - corners.min(axis=0)


def describe_location(volume: Volume, centroid: np.ndarray, head: np.ndarray) -> dict[str, str]:
    """LPS: +x is the patient's left, +y posterior, +z superior."""
    extent = patient_extent(volume)
    names = (("hemisphere", "left", "right", "midline"), ("anterior_posterior", "posterior", "anterior", "central"),
             ("superior_inferior", "superior", "inferior", "central"))
    location = {}
    for axis, (key, positive, negative, centre) in enumerate(names):
        offset = float(centroid[axis] - head[axis])
        if extent[axis] < RESOLVABLE_MM:
            location[key] = "unknown"
        elif abs(offset) < MIDLINE_MM:
            location[key] = centre
        else:
            location[key] = positive if offset > 0 else negative
    return location


def source_labels(tumours: list[Tumour], prediction: SeriesPrediction, shape: tuple[int, int, int]) -> np.ndarray:
    """(K, rows, cols) uint8 label volume on the source grid: 0 background, n + 1 = tumour n (nearest
    model pixel), for the DICOM SEG and the thumbnails."""
    h, w = prediction.grid.shape
    rows = np.minimum((np.arange(shape[1]) / prediction.grid.scale[0]).astype(int), h - 1)
    cols = np.minimum((np.arange(shape[2]) / prediction.grid.scale[1]).astype(int), w - 1)
    labels = np.zeros(shape, np.uint8)
    for tumour in tumours:
        labels[tumour.component[:, rows][:, :, cols]] = tumour.index + 1
    # A source coarser than the model grid skips model pixels: see draw_missed_tumours.
    draw_missed_tumours(labels, tumours, lambda component: _footprint(component, prediction.grid, shape))
    return labels


def _footprint(component: np.ndarray, grid: ModelGrid, shape: tuple[int, int, int]) -> np.ndarray:
    """Source pixels with a model pixel of `component` at any corner of their continuous model position."""
    h, w = component.shape[1:]
    y = (np.arange(shape[1]) + 0.5) / grid.scale[0] - 0.5
    x = (np.arange(shape[2]) + 0.5) / grid.scale[1] - 0.5
    hit = np.zeros(shape, bool)
    for rows in (np.floor(y), np.ceil(y)):
        for cols in (np.floor(x), np.ceil(x)):
            r, c = np.clip(rows.astype(int), 0, h - 1), np.clip(cols.astype(int), 0, w - 1)
            hit |= component[:, r][:, :, c]
    return hit


def draw_missed_tumours(labels: np.ndarray, tumours: list[Tumour],
                        footprint: Callable[[np.ndarray], np.ndarray]) -> None:
    """Draw each tumour nearest sampling left without a voxel on its `footprint` (source voxels, from its
    model-grid component). One count of the labels, kept current as tumours are drawn, finds them: no scan
    of the volume per tumour."""
    counts = np.bincount(labels.ravel(), minlength=256)
    for tumour in tumours:
        if counts[tumour.index + 1] == 0:
            _paint_missing_tumour(labels, tumour.index + 1, footprint(tumour.component), counts)


def _paint_missing_tumour(labels: np.ndarray, label: int, candidates: np.ndarray, counts: np.ndarray) -> None:
    """Nearest sampling from the source grid can miss a tumour thinner than the source's slices (a 5 mm model
    slice between 6.5 mm source slices) or pixels: the SEG must hold every tumour the status reports, so the
    tumour is drawn on its footprint (`candidates`), on background where there is any, else on voxels of
    tumours that keep others: a tumour is never erased to make room for another. `counts` (voxels per
    label) is updated to match."""
    free = candidates & (labels == 0)
    if free.any():
        drawn = int(free.sum())
        labels[free] = label
        counts[0] -= drawn
        counts[label] += drawn
        return
    for voxel in zip(*np.nonzero(candidates)):
        if counts[labels[voxel]] > 1:
            counts[labels[voxel]] -= 1
            counts[label] += 1
            labels[voxel] = label
