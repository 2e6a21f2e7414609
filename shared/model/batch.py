"""Per-sample boxes and mask-derived labels for a batch of (possibly augmented) 2D masks, in torch."""

from __future__ import annotations

import torch

from shared.model.tasks import MISSING, SIZE_BINS_MM2


def boxes_from_masks(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """masks (N,1,H,W) -> boxes (N,4) as (y0, x0, y1, x1) end exclusive, and (N,) "has a tumour".
    An empty mask gets the whole image as its box (its labels are MISSING, so the box is never used)."""
    n, _, height, width = masks.shape
    present = masks[:, 0] > 0.5
    rows, cols = present.any(2), present.any(1)
    has = rows.any(1)
    ar_h, ar_w = torch.arange(height), torch.arange(width)
    y0 = torch.where(rows, ar_h, height).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    x0 = torch.where(cols, ar_w, width).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    boxes = torch.stack([y0, x0, y1, x1], 1)
    whole = torch.tensor([0, 0, height, width])
    return torch.where(has[:, None], boxes, whole), has


def derived_batch_labels(masks: torch.Tensor, spacing_mm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Size bin and centroid position per sample (same rules as shared.model.tasks.derived_labels)."""
    present = (masks[:, 0] > 0.5).float()
    n, height, width = present.shape
    area_px = present.sum((1, 2))
    has = area_px > 0
    safe = area_px.clamp(min=1)
    cy = (present.sum(2) * torch.arange(height)).sum(1) / safe
    cx = (present.sum(1) * torch.arange(width)).sum(1) / safe
    area_mm2 = area_px * spacing_mm.float() ** 2
    size = torch.bucketize(area_mm2, torch.tensor(SIZE_BINS_MM2), right=True)
    missing = torch.full((n,), MISSING, dtype=torch.long)
    return {
        "size": torch.where(has, size, missing),
        "horizontal": torch.where(has, (cx >= width / 2).long(), missing),
        "vertical": torch.where(has, (cy >= height / 2).long(), missing),
    }
