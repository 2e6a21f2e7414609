"""The multitask network of Pisov et al. 2018, for 2D slices or 3D volumes (one code path, `dims`).

    image -> prep (two convolutions) -> down x4 -> ResBlocks  = backbone feature map F (stride 4)
    segmentation: one ResBlock over F -> 1x1 conv -> tumour logit, upsampled x4 to the input grid
    each classification task: RoiPool(F, tumour box) -> one linear layer

RoiPool (the slice of F under the box, global max over it) is the tumour's embedding: its size is the
backbone's channel count. Boxes are given in input voxels and mapped onto F's stride-4 grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 4


def _layers(dims: int):
    if dims == 2:
        return nn.Conv2d, nn.BatchNorm2d
    if dims == 3:
        return nn.Conv3d, nn.BatchNorm3d
    raise ValueError(f"dims: expected 2 or 3, found {dims}")


class ResBlock(nn.Module):
    """Two 3-wide convolutions (padding 1) with a skip: same shape in and out."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        conv, norm = _layers(dims)
        self.body = nn.Sequential(
            conv(channels, channels, 3, padding=1, bias=False), norm(channels), nn.ReLU(inplace=True),
            conv(channels, channels, 3, padding=1, bias=False), norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Backbone(nn.Module):
    def __init__(self, dims: int, in_channels: int, channels: int, blocks: int) -> None:
        super().__init__()
        conv, norm = _layers(dims)
        prep = max(8, channels // 4)
        self.prep = nn.Sequential(
            conv(in_channels, prep, 3, padding=1, bias=False), norm(prep), nn.ReLU(inplace=True),
            conv(prep, prep, 3, padding=1, bias=False), norm(prep), nn.ReLU(inplace=True))
        # Down by 4 in one learned step: a 4-wide stride-4 convolution sees every input voxel once.
        self.down = nn.Sequential(conv(prep, channels, STRIDE, stride=STRIDE, bias=False), norm(channels),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResBlock(channels, dims) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(self.prep(x)))


def roi_pool(features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Global max of each sample's feature map under its box.

    features: (N, C, *spatial) at stride 4; boxes: (N, 2*dims) as (start..., end...) in input voxels,
    end exclusive. A box is widened to at least one feature cell so every tumour gets an embedding.
    """
    dims = features.dim() - 2
    if boxes.shape != (features.shape[0], 2 * dims):
        raise ValueError(f"boxes: expected shape ({features.shape[0]}, {2 * dims}), found {tuple(boxes.shape)}")
    starts = torch.div(boxes[:, :dims], STRIDE, rounding_mode="floor").long()
    ends = torch.div(boxes[:, dims:] + STRIDE - 1, STRIDE, rounding_mode="floor").long()
    pooled = []
    for i in range(features.shape[0]):
        index = [i, slice(None)]
        for d in range(dims):
            size = features.shape[2 + d]
            lo = int(starts[i, d].clamp(0, size - 1))
            hi = int(ends[i, d].clamp(lo + 1, size))
            index.append(slice(lo, hi))
        pooled.append(features[tuple(index)].amax(dim=tuple(range(1, dims + 1))))
    return torch.stack(pooled)


class PisovNet(nn.Module):
    """Backbone + segmentation head + one RoiPool classifier per task (`tasks`: name -> classes)."""

    def __init__(self, dims: int = 2, in_channels: int = 1, channels: int = 64, blocks: int = 4,
                 tasks: dict[str, int] | None = None, projection: int = 0) -> None:
        super().__init__()
        conv, _ = _layers(dims)
        self.dims = dims
        self.backbone = Backbone(dims, in_channels, channels, blocks)
        self.seg_head = nn.Sequential(ResBlock(channels, dims), conv(channels, 1, 1))
        # Optional learned projection of the RoiPool vector (metric learning); 0 keeps the raw vector.
        self.projection = nn.Linear(channels, projection, bias=False) if projection else None
        # Keys are prefixed: a task named "type" would clash with nn.Module.type.
        self.heads = nn.ModuleDict({f"task_{name}": nn.Linear(channels, n) for name, n in (tasks or {}).items()})

    @property
    def embedding_size(self) -> int:
        return self.projection.out_features if self.projection is not None else self.heads_in

    @property
    def heads_in(self) -> int:
        return self.seg_head[1].in_channels

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def segment(self, features: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        mode = "bilinear" if self.dims == 2 else "trilinear"
        return F.interpolate(self.seg_head(features), size=tuple(size), mode=mode, align_corners=False)

    def embed(self, features: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(RoiPool vectors, embeddings): equal unless a projection is configured."""
        pooled = roi_pool(features, boxes)
        return pooled, (self.projection(pooled) if self.projection is not None else pooled)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mask logits (N, 1, *spatial), per-task logits, and the tumour embeddings for the given boxes."""
        features = self.features(images)
        pooled, embedding = self.embed(features.float(), boxes)
        out = {"mask": self.segment(features, images.shape[2:]), "embedding": embedding}
        for key, head in self.heads.items():
            out[key.removeprefix("task_")] = head(pooled)
        return out
