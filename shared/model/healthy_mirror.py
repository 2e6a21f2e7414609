"""Tumour-free brain slices made from real ones. Every figshare slice holds a tumour, so the network
never sees a brain without one and learns that some tumour is always there: on tumour-free slices of
real studies it marks one (docs/model.md, "The mask rule"). Anatomy-free frames (negatives.py) teach it
nothing about brains. A coronal or axial slice whose tumour lies wholly in one half is, on its other
half, a picture of the same brain without tumour; mirrored over the tumour's half it makes a plausible
tumour-free slice (empty mask, every label MISSING). Sagittal slices have no left-right symmetry: a
slice qualifies only when its two halves, tumour left out, correlate like mirror images."""

from __future__ import annotations

import torch

# Pearson correlation of the left half with the mirrored right half, tumour pixels left out, on the
# figshare slices at 128 px: coronal and axial slices score 0.65-0.9, sagittal ones below 0.62.
MIN_MIRROR_CORRELATION = 0.65
# The tumour must stay this share of the width away from the vertical midline (the seam of the mirror).
MIDLINE_MARGIN = 0.03


def mirror_healthy_halves(images: torch.Tensor, masks: torch.Tensor, count: int,
                          exclude: torch.Tensor | None = None) -> torch.Tensor:
    """In place on (N,1,H,W) images and masks: up to `count` qualifying slices (in batch order), none of
    those `exclude` (N,) marks, get their tumour-free half mirrored over the other and an empty mask.
    Returns which were changed (N,)."""
    tumour_left, tumour_right = _one_sided(masks)
    qualifies = (tumour_left | tumour_right) & (_mirror_correlation(images, masks) >= MIN_MIRROR_CORRELATION)
    if exclude is not None:
        qualifies &= ~exclude
    chosen = torch.zeros(len(images), dtype=torch.bool)
    chosen[qualifies.nonzero()[:count, 0]] = True
    width = images.shape[-1]
    half = width // 2
    for i in chosen.nonzero()[:, 0].tolist():
        if tumour_left[i]:
            images[i, ..., :half] = images[i, ..., width - half:].flip(-1)
        else:
            images[i, ..., width - half:] = images[i, ..., :half].flip(-1)
        masks[i] = 0
    return chosen


def _one_sided(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) each: the tumour lies wholly left of the midline (with the margin), or wholly right."""
    columns = (masks[:, 0] > 0.5).any(1)
    width = columns.shape[1]
    margin = max(1, round(MIDLINE_MARGIN * width))
    has = columns.any(1)
    left = has & ~columns[:, width // 2 - margin:].any(1)
    right = has & ~columns[:, : (width + 1) // 2 + margin].any(1)
    return left, right


def _mirror_correlation(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) correlation of each slice's left half with its mirrored right half, tumour pixels (on
    either side) left out."""
    width = images.shape[-1]
    half = width // 2
    left, right = images[:, 0, :, :half].float(), images[:, 0, :, width - half:].flip(-1).float()
    tumour = masks[:, 0] > 0.5
    keep = (~(tumour[:, :, :half] | tumour[:, :, width - half:].flip(-1))).float()
    count = keep.sum((1, 2)).clamp(min=1)
    mean_l = (left * keep).sum((1, 2)) / count
    mean_r = (right * keep).sum((1, 2)) / count
    dl, dr = (left - mean_l[:, None, None]) * keep, (right - mean_r[:, None, None]) * keep
    covariance = (dl * dr).sum((1, 2))
    return covariance / ((dl ** 2).sum((1, 2)).sqrt() * (dr ** 2).sum((1, 2)).sqrt()).clamp(min=1e-6)
