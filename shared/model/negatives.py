"""Anatomy-free training images: every figshare slice holds a tumour, so without these the network
learns that some tumour is always there and marks one on a localiser, a phantom or a blank frame. A
few such images per batch (empty mask, every task label MISSING) teach it to find nothing where there
is no brain."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from shared.model.preprocess import HIGH_PERCENTILE, LOW_PERCENTILE


def anatomy_free(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 1, size, size) in [-1, 1]: linear ramps at random angles, smooth random blobs, or flat
    frames, each with a little noise, then normalised as every real image is (shared.model.preprocess:
    1st..99th percentile to [-1, 1]), so a flat frame reaches the network as the worker would feed it."""
    kinds = torch.randint(0, 3, (count,), generator=generator)
    ramps = _ramps(count, size, generator)
    blobs = _smooth_fields(count, size, generator)
    flat = torch.rand(count, 1, 1, 1, generator=generator).expand(count, 1, size, size)
    unit = torch.where((kinds == 0)[:, None, None, None], ramps,
                       torch.where((kinds == 1)[:, None, None, None], blobs, flat))
    noisy = unit + 0.02 * torch.randn(count, 1, size, size, generator=generator)
    flat_rows = noisy.flatten(1)
    low = torch.quantile(flat_rows, LOW_PERCENTILE / 100, dim=1)[:, None, None, None]
    high = torch.quantile(flat_rows, HIGH_PERCENTILE / 100, dim=1)[:, None, None, None]
    scaled = ((noisy - low) / (high - low).clamp(min=1e-6)).clamp(0, 1)
    return ((scaled - 0.5) * 2).contiguous()


def _ramps(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    angle = torch.rand(count, generator=generator) * 2 * math.pi
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    ramp = torch.cos(angle)[:, None, None] * x + torch.sin(angle)[:, None, None] * y
    low, high = ramp.amin((1, 2), keepdim=True), ramp.amax((1, 2), keepdim=True)
    return ((ramp - low) / (high - low).clamp(min=1e-6))[:, None]


def _smooth_fields(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    coarse = torch.rand(count, 1, 6, 6, generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    low, high = field.amin((2, 3), keepdim=True), field.amax((2, 3), keepdim=True)
    return (field - low) / (high - low).clamp(min=1e-6)
