"""A 3D checkpoint (dims=3) on a series volume, prepared the way training3d prepared its volumes:
reoriented to (S, P, L), resampled to the card's isotropic spacing, normalised per volume, padded to the
stride. Tumours are 3D components of the predicted mask; each is pooled once on the 3D coarse map.

`Grid3D.to_source` maps a model voxel (d, h, w) to a source voxel (column i, row j, slice k): the
resampling (voxel centres) composed with the reorientation nibabel computed, so boxes, centroids and the
label volume of the SEG land on the source frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from nibabel import orientations
from scipy import ndimage

from services.worker.tumours import SizeLimits, Tumour, describe_location, draw_missed_tumours, head_centre
from services.worker.volume import Volume
from shared.model.device import autocast
from shared.model.inference import tumour_probability
from shared.model.network import STRIDE, PisovNet, roi_pool
from shared.model.preprocess import normalize_image
from shared.model.volumes import AXES, PAD_VALUE, resample

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Grid3D:
    shape: tuple[int, int, int]   # model grid before padding
    spacing_mm: tuple[float, float, float]
    to_source: np.ndarray         # 4x4: (d, h, w, 1) -> (column, row, slice, 1) of the source volume


def prepare_volume(volume: Volume, spacing_mm: float, multiple: int = STRIDE) -> tuple[np.ndarray, Grid3D]:
    data = volume.pixels.transpose(2, 1, 0)  # (column i, row j, slice k): the affine's voxel order
    ras = LPS_TO_RAS @ volume.affine
    transform = orientations.ornt_transform(orientations.io_orientation(ras), orientations.axcodes2ornt(AXES))
    oriented = orientations.apply_orientation(data, transform)
    zooms = np.linalg.norm(ras[:3, :3], axis=0)
    spacing = [0.0, 0.0, 0.0]
    for axis, (target, _) in enumerate(transform):
        spacing[int(target)] = float(zooms[axis])
    resampled, exact = resample(oriented, tuple(spacing), spacing_mm)
    scale = np.array(oriented.shape) / np.array(resampled.shape)
    centres = np.eye(4)
    centres[:3, :3] = np.diag(scale)
    centres[:3, 3] = (scale - 1) / 2  # model voxel centre -> oriented voxel centre
    to_source = orientations.inv_ornt_aff(transform, data.shape) @ centres
    # Padded with background at the end to the model's input multiple (its `input_multiple`).
    padded = np.full([-(-n // multiple) * multiple for n in resampled.shape], PAD_VALUE, np.float32)
    padded[tuple(slice(0, n) for n in resampled.shape)] = normalize_image(resampled)
    return padded, Grid3D(tuple(int(n) for n in resampled.shape), exact, to_source)


@torch.no_grad()
def predict_volume(model: PisovNet, prepared: np.ndarray, grid: Grid3D, device: torch.device
                   ) -> tuple[np.ndarray, torch.Tensor]:
    """(tumour probability on the model grid, coarse map (1, C, ...) in fp32); the network in the model's
    precision (`model.bf16`, device.autocast)."""
    model.eval()
    x = torch.from_numpy(prepared)[None, None].to(device)
    with autocast(device, enabled=model.bf16):
        features = model.features(x)
        probability = tumour_probability(model, x, features, model.mask_rule.flip_average)
    d, h, w = grid.shape
    return probability[0, 0, :d, :h, :w].cpu().numpy(), features[0].float().cpu()


def find_tumours_3d(model: PisovNet, volume: Volume, prepared: np.ndarray, grid: Grid3D, device: torch.device,
                    limits: SizeLimits) -> list[Tumour]:
    probability, coarse = predict_volume(model, prepared, grid, device)
    mask = probability > model.mask_rule.threshold
    labels, count = ndimage.label(mask)
    if count == 0:
        return []
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    voxel_mm3 = float(np.prod(grid.spacing_mm))
    keep = [label for label in np.argsort(-sizes, kind="stable") + 1
            if sizes[label - 1] * voxel_mm3 >= limits.min_volume_mm3]
    head = head_centre(volume)
    return [_tumour(i, labels == label, model, coarse, volume, grid, voxel_mm3, head) for i, label in enumerate(keep)]


def _tumour(index: int, component: np.ndarray, model: PisovNet, coarse: torch.Tensor, volume: Volume, grid: Grid3D,
            voxel_mm3: float, head: np.ndarray) -> Tumour:
    ds, hs, ws = np.nonzero(component)
    box = (int(ds.min()), int(hs.min()), int(ws.min()), int(ds.max()) + 1, int(hs.max()) + 1, int(ws.max()) + 1)
    with torch.no_grad():
        pooled = roi_pool(coarse, torch.tensor([box]))
        embedding = model.projection(pooled) if model.projection is not None else pooled
        probabilities = {key.removeprefix("task_"): torch.softmax(head(pooled), 1)[0].numpy()
                         for key, head in model.heads.items()}
    i, j, k = (grid.to_source @ np.array([ds.mean(), hs.mean(), ws.mean(), 1.0]))[:3]
    centroid = volume.to_patient(k, j, i)
    return Tumour(index, box, source_box(box, grid, volume.pixels.shape), embedding[0].numpy().astype(np.float32),
                  probabilities, round(float(len(ds) * voxel_mm3), 3), int(len(ds)),
                  tuple(round(float(c), 2) for c in centroid), describe_location(volume, centroid, head), component)


def source_box(box: tuple[int, ...], grid: Grid3D, shape: tuple[int, int, int]) -> tuple[int, int, int, int, int, int]:
    """The source voxels (slice, row, column; end exclusive) holding every corner of a model box."""
    edges = [(box[a] - 0.5, box[a + 3] - 0.5) for a in range(3)]
    corners = np.array([[d, h, w, 1.0] for d in edges[0] for h in edges[1] for w in edges[2]])
    i, j, k = (grid.to_source @ corners.T)[:3]
    low = [max(0, int(np.floor(v.min() + 0.5))) for v in (k, j, i)]
    high = [min(n, int(np.floor(v.max() + 0.5)) + 1) for n, v in zip(shape, (k, j, i))]
    return (*low, *high)


def source_labels_3d(tumours: list[Tumour], grid: Grid3D, shape: tuple[int, int, int]) -> np.ndarray:
    """(K, rows, cols) uint8 on the source grid, 0 background, n + 1 = tumour n (nearest model voxel)."""
    labels = np.zeros(shape, np.uint8)
    if not tumours:
        return labels
    model_labels = np.zeros(grid.shape, np.uint8)
    for tumour in tumours:
        model_labels[tumour.component] = tumour.index + 1
    inverse = np.linalg.inv(grid.to_source)
    for k in range(shape[0]):
        d, h, w = np.rint(_model_coordinates(inverse, k, shape)).astype(int)
        inside = (d >= 0) & (d < grid.shape[0]) & (h >= 0) & (h < grid.shape[1]) & (w >= 0) & (w < grid.shape[2])
        plane = np.zeros(inside.size, np.uint8)
        plane[inside] = model_labels[d[inside], h[inside], w[inside]]
        labels[k] = plane.reshape(shape[1], shape[2])
    draw_missed_tumours(labels, tumours, lambda component: _footprint(component, inverse, shape))
    return labels


def _model_coordinates(inverse: np.ndarray, k: int, shape: tuple[int, int, int]) -> np.ndarray:
    """(3, rows * cols): continuous model coordinates (d, h, w) of every source voxel of slice k."""
    rows, cols = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    points = np.stack([cols.ravel(), rows.ravel(), np.full(cols.size, k), np.ones(cols.size)])
    return (inverse @ points)[:3]


def _footprint(component: np.ndarray, inverse: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Source voxels with a model voxel of `component` at any corner of their continuous model position
    (floor or ceiling along each axis): the tumour's own extent on the slices nearest to it."""
    hit = np.zeros(shape, bool)
    for k in range(shape[0]):
        position, plane = _model_coordinates(inverse, k, shape), np.zeros(shape[1] * shape[2], bool)
        for corner in itertools.product((np.floor, np.ceil), repeat=3):
            d, h, w = (rounding(axis).astype(int) for rounding, axis in zip(corner, position))
            inside = ((d >= 0) & (d < component.shape[0]) & (h >= 0) & (h < component.shape[1]) & (w >= 0)
                      & (w < component.shape[2]))
            plane[inside] |= component[d[inside], h[inside], w[inside]]
        hit[k] = plane.reshape(shape[1], shape[2])
    return hit
