"""Batch augmentation on tensors: random affine (rotation, scale, shift, mirror) applied identically to
images and masks; optionally lower-resolution views (Gaussian blur, or down- and up-sampling), each image
with a chance of 1 in 4 for each, images only (the outline stays the truth); and intensity jitter: gamma
and contrast always, and optionally a smooth multiplicative bias field and Gaussian noise (the coil
shading, thicker slices, coarser matrices and noise of other scanners, which the figshare PNGs lack).
Labels that depend on geometry (box, size, position) are derived again from the transformed mask by the
caller, so they stay true."""

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
    blur: float = 0.0           # largest Gaussian blur sd (pixels), drawn per image from [0, blur]; 0 = off
    low_res: float = 0.0        # smallest down-and-up-sampling factor, drawn per image from [low_res, 1]; 0 = off


# Each image's chance of a blur, and independently of a lower resolution (so 1 in 16 gets both): nnU-Net
# blurs 20 % and down-samples 25 % of its samples. Not recorded in the model card, like rotate_deg or
# gamma: the card's code version fixes it.
LOWER_RESOLUTION_CHANCE = 0.25


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
    return _intensity(_lower_resolution(moved, aug, generator), aug, generator), moved_masks.float()


def _lower_resolution(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Blur and/or down-and-up-sample some images of the batch (each its own strength), before noise is
    added, as a scanner with a coarser matrix or thicker slices would."""
    blurred, sds, coarse, factors = lower_resolution_draws(images.shape[0], aug, generator)
    if aug.blur:
        images = torch.where(blurred[:, None, None, None], gaussian_blur(images, sds), images)
    if aug.low_res:
        images = images.clone()
        for i in torch.nonzero(coarse).flatten().tolist():
            images[i] = down_and_up(images[i:i + 1], float(factors[i]))[0]
    return images


def lower_resolution_draws(n: int, aug: Augmentation, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(blurred, sds, coarse, factors) for n images: which are blurred and with what sd in [0, blur], which
    are down-sampled and to what factor in [low_res, 1]. An option that is off draws no random numbers, so
    training without it stays exactly as it was."""
    blurred, sds = torch.zeros(n, dtype=torch.bool), torch.zeros(n)
    coarse, factors = torch.zeros(n, dtype=torch.bool), torch.ones(n)
    if aug.blur:
        blurred = torch.rand(n, generator=generator) < LOWER_RESOLUTION_CHANCE
        sds = torch.rand(n, generator=generator) * aug.blur
    if aug.low_res:
        coarse = torch.rand(n, generator=generator) < LOWER_RESOLUTION_CHANCE
        factors = aug.low_res + (1 - aug.low_res) * torch.rand(n, generator=generator)
    return blurred, sds, coarse, factors


def gaussian_blur(images: torch.Tensor, sds: torch.Tensor) -> torch.Tensor:
    """Each image of (N,C,H,W) blurred with its own sd (pixels): one separable kernel per image, edges
    replicated so the background stays background."""
    n = images.shape[0]
    if images.dim() != 4 or tuple(sds.shape) != (n,):
        raise ValueError(f"gaussian blur: expected images (N, C, H, W) and N sds, found {tuple(images.shape)} "
                         f"and {tuple(sds.shape)}")
    sds = sds.clamp(min=1e-3)  # an sd of 0 (no blur) would make the kernel 0 / 0
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
    if not 0 < factor <= 1:
        raise ValueError(f"down and up: expected a factor in (0, 1], found {factor}")
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
