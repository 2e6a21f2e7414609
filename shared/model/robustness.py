"""Box distortion for the robustness test (paper, Tab. 4): each side of a box scaled and shifted by up
to a fraction of its length, independently per dimension, then clipped to the image."""

from __future__ import annotations

import numpy as np


def distort_boxes(boxes: np.ndarray, fraction: float, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """boxes (N, 4) as (y0, x0, y1, x1); rows of -1 (no box) are kept as they are."""
    rng = np.random.default_rng(seed)
    out = boxes.astype(float).copy()
    valid = boxes[:, 0] >= 0
    for d, size in enumerate(shape):
        start, end = out[:, d], out[:, d + 2]
        length = end - start
        centre = (start + end) / 2 + rng.uniform(-fraction, fraction, len(out)) * length
        half = length * (1 + rng.uniform(-fraction, fraction, len(out))) / 2
        out[:, d] = np.clip(np.floor(centre - half), 0, size - 1)
        out[:, d + 2] = np.clip(np.ceil(centre + half), out[:, d] + 1, size)
    out = out.astype(int)
    out[~valid] = boxes[~valid]
    return out
