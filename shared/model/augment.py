"""Batch augmentation on tensors: random affine (rotation, scale, shift, mirror) applied identically to
images and masks; optionally a lower resolution (Gaussian blur, or down- and up-sampling) for a random
quarter of the batch, images only (the outline stays the truth); and intensity jitter: gamma and contrast
always, and optionally a smooth multiplicative bias field and Gaussian noise (the coil shading, thicker
slices, coarser matrices and noise of other scanners, which the figshare PNGs lack). Labels that depend on geometry (box, size, position) are derived again from the
transformed mask by the caller, so they stay true."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Augmentation:
    rotate_deg: float = 15.0
    scale: float = 0.15
    shift: float = 0.08
    mirror: bool = True
    gamma: float = 0.3
    contrast: float = 0.15
    bias_field: float = 0.0     # peak log-gain of a smooth field (0.3 = up to about x1.35 / x0.74)
    noise: float = 0.0          # largest Gaussian noise sd, in units of the [-1, 1] range
    blur: float = 0.0           # largest Gaussian blur sd (pixels) for a random quarter of the batch; 0 = off
    low_res: float = 0.0        # smallest resolution factor a random quarter of the batch is shown at; 0 = off


RESOLUTION_SHARE = 0.25  # the share of a batch each resolution augmentation touches (nnU-Net's order of size)


def augment_batch(images: torch.Tensor, masks: torch.Tensor, aug: Augmentation,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N,1,H,W) in [-1,1], masks (N,1,H,W) float 0/1 -> transformed copies."""
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-aug.rotate_deg, aug.rotate_deg) * math.pi / 180
    scale = 1 + uniform(-aug.scale, aug.scale)
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if aug.mirror else torch.ones(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * mirror, cos
    theta[:, 0, 2], theta[:, 1, 2] = uniform(-aug.shift, aug.shift) * 2, uniform(-aug.shift, aug.shift) * 2
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Outside the image is background: -1 after normalisation.
    moved = F.grid_sample(images + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    moved_masks = (F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False) >= 0.5)
    return _intensity(_resolution(moved, aug, generator), aug, generator), moved_masks.float()


def _resolution(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Blur and/or down-and-up-sample a random share of the batch (each its own strength), before noise is
    added, as a scanner with a coarser matrix or thicker slices would."""
    n = images.shape[0]
    if aug.blur:
        chosen = torch.rand(n, generator=generator) < RESOLUTION_SHARE
        sds = torch.rand(n, generator=generator) * aug.blur
        images = torch.where(chosen[:, None, None, None], gaussian_blur(images, sds.clamp(min=1e-3)), images)
    if aug.low_res:
        chosen = torch.rand(n, generator=generator) < RESOLUTION_SHARE
        factors = aug.low_res + (1 - aug.low_res) * torch.rand(n, generator=generator)
        images = images.clone()
        for i in torch.nonzero(chosen).flatten().tolist():
            images[i] = down_and_up(images[i:i + 1], float(factors[i]))[0]
    return images


def gaussian_blur(images: torch.Tensor, sds: torch.Tensor) -> torch.Tensor:
    """Each image of (N,1,H,W) blurred with its own sd (pixels): one separable kernel per image, edges
    replicated so the background stays background."""
    n = images.shape[0]
    radius = max(1, math.ceil(3 * float(sds.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernels = torch.exp(-0.5 * (offsets[None] / sds[:, None].to(images.dtype)) ** 2)
    kernels = (kernels / kernels.sum(1, keepdim=True))[:, None, None]        # (N,1,1,K)
    x = F.pad(images.transpose(0, 1), (radius, radius, radius, radius), mode="replicate")  # (1,N,H+2r,W+2r)
    x = F.conv2d(x, kernels, groups=n)
    x = F.conv2d(x, kernels.transpose(2, 3), groups=n)
    return x.transpose(0, 1)


def down_and_up(image: torch.Tensor, factor: float) -> torch.Tensor:
    """(1,1,H,W) shrunk to `factor` of its side by area averaging, then bilinearly back to H x W."""
    height, width = image.shape[2:]
    small = F.interpolate(image, size=(max(2, round(height * factor)), max(2, round(width * factor))), mode="area")
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


def _intensity(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    n = images.shape[0]
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * aug.gamma)
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * aug.contrast
    unit = ((images + 1) / 2).clamp(0, 1) ** gamma
    if aug.bias_field:
        unit = unit * _bias_field(images.shape, aug.bias_field, generator)
    out = (unit - 0.5) * contrast * 2
    if aug.noise:
        sd = torch.rand(n, 1, 1, 1, generator=generator) * aug.noise
        out = out + sd * torch.randn(images.shape, generator=generator)
    return out.clamp(-1, 1)


def _bias_field(shape: torch.Size, strength: float, generator: torch.Generator) -> torch.Tensor:
    """exp of a random 4x4 grid of log-gains, up-sampled bicubically: smooth over the whole image."""
    n, _, height, width = shape
    coarse = (torch.rand(n, 1, 4, 4, generator=generator) * 2 - 1) * strength
    return torch.exp(F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True))
