"""The mirror image a symmetry-aware network reads beside the image itself.

A brain is nearly symmetric left to right and a tumour breaks that symmetry: a barely enhancing glioma
can differ from its surroundings less than from the same place in the other hemisphere. With `symmetry`
the network gets, as a second input channel, each image mirrored along its last axis about its own
content's centre (the intensity-weighted centroid of its columns), not about the grid's centre: the
worker pads small slices at their end and augmentation shifts them, so the grid's centre is often not
the head's. Where the mirror reads outside the grid it sees the image's background (its minimum).

2D and 3D alike: the mirrored axis is the last one, as in flip averaging."""

from __future__ import annotations

import torch


def content_centre(images: torch.Tensor) -> torch.Tensor:
    """(N,) position along the last axis of each image's intensity-weighted centroid (in voxels), with
    weights = intensity above the image's minimum; the grid's centre for a blank image."""
    x = images.float()
    return _centre(x, _per_image_minimum(x))


def mirror_about_content(images: torch.Tensor) -> torch.Tensor:
    """Each image (N, C, *spatial) mirrored along the last axis about its content centre: voxel j takes
    the value at 2c - j, interpolated linearly; beyond the grid, the image's minimum."""
    x = images.float()
    n, width = x.shape[0], x.shape[-1]
    background = _per_image_minimum(x)
    centre = _centre(x, background).reshape(n, *([1] * (x.dim() - 1)))
    source = 2 * centre - torch.arange(width, dtype=torch.float32, device=x.device)   # (N, 1.., W)
    low = torch.floor(source)
    frac = source - low

    def read(index: torch.Tensor) -> torch.Tensor:
        inside = (index >= 0) & (index <= width - 1)
        clamped = index.clamp(0, width - 1).long().expand(x.shape)
        return torch.where(inside.expand(x.shape), x.gather(-1, clamped), background)

    mirrored = read(low) * (1 - frac) + read(low + 1) * frac
    return mirrored.to(images.dtype)


def _per_image_minimum(x: torch.Tensor) -> torch.Tensor:
    """Each image's minimum (its background), shaped (N, 1, ...) to broadcast over the image."""
    return x.reshape(len(x), -1).amin(1).reshape(len(x), *([1] * (x.dim() - 1)))


def _centre(x: torch.Tensor, minimum: torch.Tensor) -> torch.Tensor:
    width = x.shape[-1]
    profile = (x - minimum).sum(dim=tuple(range(1, x.dim() - 1)))        # (N, W)
    total = profile.sum(1)
    positions = torch.arange(width, dtype=torch.float32, device=x.device)
    centre = (profile * positions).sum(1) / total.clamp_min(1e-6)
    return torch.where(total > 1e-6, centre, torch.full_like(centre, (width - 1) / 2))


def with_mirror(images: torch.Tensor) -> torch.Tensor:
    """The network's input with symmetry: the image's channels followed by their mirror's."""
    return torch.cat([images, mirror_about_content(images)], dim=1)
