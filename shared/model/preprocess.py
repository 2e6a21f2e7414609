"""Intensity normalisation and resampling shared by training and the worker, so a DICOM slice reaches
the network exactly as a training image did.

Per-image percentile scaling: MR intensities have no absolute unit, and the figshare PNGs were
windowed differently per image, so each 2D image (each slice, for a volume run slice by slice) is
mapped to [0, 1] between its 1st and 99th percentile, then centred.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.0


def normalize_image(image: np.ndarray) -> np.ndarray:
    """float32 in about [-1, 1]: (clip((x - p1) / (p99 - p1), 0, 1) - 0.5) * 2."""
    data = image.astype(np.float32, copy=False)
    low, high = np.percentile(data, [LOW_PERCENTILE, HIGH_PERCENTILE])
    scale = float(high - low) or 1.0
    return ((np.clip((data - low) / scale, 0.0, 1.0) - 0.5) * 2.0).astype(np.float32)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Square 2D image to size x size (area averaging when shrinking, bilinear when growing)."""
    if image.shape == (size, size):
        return image.astype(np.float32, copy=False)
    tensor = torch.from_numpy(image.astype(np.float32, copy=False))[None, None]
    mode = "area" if image.shape[0] > size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(tensor, size=(size, size), mode=mode, **kwargs)[0, 0].numpy()


def resize_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2D image to `shape`, axis by axis the way resize_image does (area when shrinking, bilinear when
    growing), so a square slice resized here equals resize_image's output exactly."""
    data = image.astype(np.float32, copy=False)
    if data.shape == tuple(shape):
        return data
    tensor = torch.from_numpy(data)[None, None]
    shrunk = (min(data.shape[0], shape[0]), min(data.shape[1], shape[1]))
    if shrunk != data.shape:
        tensor = F.interpolate(tensor, size=shrunk, mode="area")
    if shrunk != tuple(shape):
        tensor = F.interpolate(tensor, size=tuple(shape), mode="bilinear", align_corners=False)
    return tensor[0, 0].numpy()


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary mask to size x size: a pixel is tumour when at least half of what it covers is."""
    return resize_image(mask.astype(np.float32), size) >= 0.5
