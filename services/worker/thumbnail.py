"""A tumour's thumbnail: the source slice through its centre, windowed, with the tumour's outline, as a
PNG the gateway serves (outputs.py writes it)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

OUTLINE_RGB = (255, 64, 32)


def render(slice_pixels: np.ndarray, mask: np.ndarray) -> bytes:
    """PNG bytes: the slice windowed between its 1st and 99th percentile, the mask's border in colour."""
    low, high = np.percentile(slice_pixels, [1, 99])
    grey = (np.clip((slice_pixels - low) / (float(high - low) or 1.0), 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    border = mask & ~ndimage.binary_erosion(mask)
    rgb[border] = OUTLINE_RGB
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def centre_slice(labels: np.ndarray, label: int) -> int:
    """The slice holding the most of the tumour (its centre for compact lesions)."""
    counts = (labels == label).sum(axis=(1, 2))
    return int(np.argmax(counts))
