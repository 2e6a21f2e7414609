"""The multitask network of Pisov et al. 2018, for 2D slices or 3D volumes (one code path, `dims`).

    image -> prep (two convolutions) -> down x4 -> ResBlocks -> up x4  = backbone feature map F
    segmentation: one ResBlock over F (+ the prep features, a skip for sharp edges) -> tumour logit
    each classification task: RoiPool(F, tumour box) -> one linear layer
    optional `mid_level` (not in the paper): down x4 as two stride-2 steps, and the segmentation head
    adds a ResBlock at stride 2 fed by that level; RoiPool and the embedding are unchanged
    optional `context` (not in the paper): the segmentation head adds the coarse map average-pooled to
    1, 2 and 4 cells per side (a pyramid, as in PSPNet) and mixes it with a ResBlock at stride 4, so a
    pixel's mask logit can depend on the whole slice; RoiPool and the embedding are unchanged
    optional `mask_levels` (not in the paper): the segmentation head first runs a small U-Net on the
    coarse map, `mask_levels` learned stride-2 steps down (wider, a ResBlock each) and back up with
    skips, so the mask sees larger shapes at coarser scales; RoiPool and the embedding are unchanged;
    with `deep_supervision`, each of those levels also gives a tumour logit that training scores against
    the mask pooled to its grid (a loss term only; inference reads the full-resolution logit alone)
    optional `symmetry` (not in the paper): the input gets a second channel, the image mirrored left to
    right about its own content's centre (`shared.model.symmetry`), since a tumour breaks the brain's
    symmetry; callers still pass one-channel images

RoiPool (the slice of F under the box, global max over it) is the tumour's embedding: its size is the
backbone's channel count. Boxes are given in input voxels.

Two exact economies keep this trainable on a CPU. F is the ResBlocks' output up-sampled x4 by
repetition, so the max of F under a box equals the max of the coarse map over the stride-4 cells the
box touches: RoiPool reads the coarse map and F is never materialised at 64 channels on the input
grid. The segmentation head narrows F to `seg_channels` (default `SEG_CHANNELS`) before up-sampling (a
1x1 convolution commutes with the up-sampling), and its ResBlock runs at that width: a full-width block
on the input grid would cost several times the whole backbone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from shared.model.mask_rule import MaskRule
from shared.model.symmetry import with_mirror

STRIDE = 4
SEG_CHANNELS = 16
CONTEXT_BINS = (1, 2, 4)


def _pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, bins) if x.dim() == 4 else F.adaptive_avg_pool3d(x, bins)


def _layers(dims: int):
    if dims == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.ConvTranspose2d
    if dims == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.ConvTranspose3d
    raise ValueError(f"dims: expected 2 or 3, found {dims}")


class ResBlock(nn.Module):
    """Two 3-wide convolutions (padding 1) with a skip: same shape in and out."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        conv, norm, _ = _layers(dims)
        self.body = nn.Sequential(
            conv(channels, channels, 3, padding=1, bias=False), norm(channels), nn.ReLU(inplace=True),
            conv(channels, channels, 3, padding=1, bias=False), norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Backbone(nn.Module):
    """prep -> down x4 -> ResBlocks. Returns (the coarse map at stride 4, the prep features) and, with
    `mid_level`, the stride-2 features too: down x4 is then two stride-2 steps with a ResBlock between."""

    def __init__(self, dims: int, in_channels: int, channels: int, blocks: int, mid_level: bool = False) -> None:
        super().__init__()
        conv, norm, _ = _layers(dims)
        prep = max(8, channels // 4)
        self.prep_channels, self.mid_channels = prep, (channels // 2 if mid_level else 0)
        self.prep = nn.Sequential(
            conv(in_channels, prep, 3, padding=1, bias=False), norm(prep), nn.ReLU(inplace=True),
            conv(prep, prep, 3, padding=1, bias=False), norm(prep), nn.ReLU(inplace=True))
        if mid_level:
            mid = self.mid_channels
            self.mid = nn.Sequential(conv(prep, mid, 2, stride=2, bias=False), norm(mid), nn.ReLU(inplace=True),
                                     ResBlock(mid, dims))
            self.down = nn.Sequential(conv(mid, channels, 2, stride=2, bias=False), norm(channels),
                                      nn.ReLU(inplace=True))
        else:
            self.mid = None
            # Down by 4 in one learned step: a 4-wide stride-4 convolution sees every input voxel once.
            self.down = nn.Sequential(conv(prep, channels, STRIDE, stride=STRIDE, bias=False), norm(channels),
                                      nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResBlock(channels, dims) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        early = self.prep(x)
        if self.mid is None:
            return self.blocks(self.down(early)), early
        mid = self.mid(early)
        return self.blocks(self.down(mid)), early, mid


class MaskLevels(nn.Module):
    """A small U-Net on the stride-4 map, for the mask only: each level halves the grid and widens by half
    the backbone's channels (64 -> 96 -> 128), a ResBlock each; on the way up a 1x1 convolution narrows,
    the up-sampled map is added to the level's skip and mixed by a ResBlock. Same shape in and out."""

    def __init__(self, channels: int, levels: int, dims: int, deep_supervision: bool = False) -> None:
        super().__init__()
        conv, norm, _ = _layers(dims)
        widths = [channels + l * channels // 2 for l in range(levels + 1)]
        # Deep supervision: a 1x1 tumour logit on each level below the coarse map, for training only.
        self.aux = nn.ModuleList(conv(b, 1, 1) for b in widths[1:]) if deep_supervision else None
        self.down = nn.ModuleList(
            nn.Sequential(conv(a, b, 2, stride=2, bias=False), norm(b), nn.ReLU(inplace=True), ResBlock(b, dims))
            for a, b in zip(widths, widths[1:]))
        self.narrow = nn.ModuleList(conv(b, a, 1) for a, b in zip(widths, widths[1:]))
        self.mix = nn.ModuleList(ResBlock(a, dims) for a in widths[:-1])

    def forward(self, coarse: torch.Tensor, aux: list | None = None) -> torch.Tensor:
        """With a list `aux` (and deep supervision), appends each coarser level's tumour logit, coarsest
        first."""
        # Each level halves with a stride-2 kernel-2 convolution: a side that is not a multiple of
        # 2**levels would lose its last row (misaligned masks) or, below 2**levels, fail outright
        # (thin 3D volumes). Edge-replicate up to the multiple, crop back at the end.
        spatial = coarse.shape[2:]
        multiple = 2 ** len(self.down)
        pads = [p for s in reversed(spatial) for p in (0, -s % multiple)]
        skips = [F.pad(coarse, pads, mode="replicate") if any(pads) else coarse]
        for step in self.down:
            skips.append(step(skips[-1]))
        x = skips.pop()
        for level, (narrow, mix) in enumerate(zip(reversed(self.narrow), reversed(self.mix))):
            if aux is not None and self.aux is not None:
                aux.append(self.aux[len(self.aux) - 1 - level](x))
            skip = skips.pop()
            x = mix(F.relu(skip + _up(narrow(x), skip)))
        return x[(..., *(slice(0, s) for s in spatial))]


class SegmentationHead(nn.Module):
    """Narrowed coarse map (with `mask_levels`, after its small U-Net; with `context`, plus its pooled pyramid, mixed by a ResBlock), up-sampled;
    with a stride-2 level, one ResBlock there first; then the prep skip, one ResBlock on the input grid
    and a 1x1 logit."""

    def __init__(self, channels: int, prep_channels: int, dims: int, width: int = SEG_CHANNELS,
                 mid_channels: int = 0, context: bool = False, mask_levels: int = 0,
                 deep_supervision: bool = False) -> None:
        super().__init__()
        conv, _, _ = _layers(dims)
        self.levels = MaskLevels(channels, mask_levels, dims, deep_supervision) if mask_levels else None
        self.narrow = conv(channels, width, 1)
        if context:
            self.context = nn.ModuleList(conv(channels, width, 1) for _ in CONTEXT_BINS)
            self.context_block = ResBlock(width, dims)
        else:
            self.context = None
        if mid_channels:
            self.mid_skip = conv(mid_channels, width, 1)
            self.mid_block = ResBlock(width, dims)
        self.skip = conv(prep_channels, width, 1)
        self.block = ResBlock(width, dims)
        self.logit = conv(width, 1, 1)

    def forward(self, coarse: torch.Tensor, early: torch.Tensor, mid: torch.Tensor | None = None,
                aux: list | None = None) -> torch.Tensor:
        x = self.narrow(coarse if self.levels is None else self.levels(coarse, aux))
        if self.context is not None:
            for bins, project in zip(CONTEXT_BINS, self.context):
                x = x + _up(project(_pool(coarse, bins)), coarse)
            x = self.context_block(F.relu(x))
        if mid is not None:
            x = self.mid_block(F.relu(_up(x, mid) + self.mid_skip(mid)))
        return self.logit(self.block(F.relu(_up(x, early) + self.skip(early))))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    mode = "bilinear" if x.dim() == 4 else "trilinear"
    return F.interpolate(x, size=like.shape[2:], mode=mode, align_corners=False)


def roi_pool(coarse: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Global max of F (= `coarse` up-sampled x4 by repetition) under each sample's box.

    coarse: (N, C, *spatial) at stride 4; boxes: (N, 2*dims) as (start..., end...) in input voxels, end
    exclusive. The cells a box touches are floor(start/4) .. ceil(end/4); an empty box still gets the
    cell it lies in, so every tumour gets a vector.
    """
    dims = coarse.dim() - 2
    if boxes.shape != (coarse.shape[0], 2 * dims):
        raise ValueError(f"boxes: expected shape ({coarse.shape[0]}, {2 * dims}), found {tuple(boxes.shape)}")
    starts = torch.div(boxes[:, :dims], STRIDE, rounding_mode="floor")
    ends = torch.div(boxes[:, dims:] + STRIDE - 1, STRIDE, rounding_mode="floor")
    pooled = []
    for i in range(coarse.shape[0]):
        index = [i, slice(None)]
        for d in range(dims):
            size = coarse.shape[2 + d]
            lo = int(starts[i, d].clamp(0, size - 1))
            hi = int(ends[i, d].clamp(lo + 1, size))
            index.append(slice(lo, hi))
        pooled.append(coarse[tuple(index)].amax(dim=tuple(range(1, dims + 1))))
    return torch.stack(pooled)


class PisovNet(nn.Module):
    """Backbone + segmentation head + one RoiPool classifier per task (`tasks`: name -> classes)."""

    def __init__(self, dims: int = 2, in_channels: int = 1, channels: int = 64, blocks: int = 4,
                 tasks: dict[str, int] | None = None, projection: int = 0, seg_channels: int = SEG_CHANNELS,
                 mid_level: bool = False, context: bool = False, mask_levels: int = 0,
                 symmetry: bool = False, deep_supervision: bool = False) -> None:
        super().__init__()
        self.dims = dims
        self.channels = channels
        self.symmetry = symmetry
        self.backbone = Backbone(dims, in_channels * (2 if symmetry else 1), channels, blocks, mid_level)
        self.seg_head = SegmentationHead(channels, self.backbone.prep_channels, dims, seg_channels,
                                         self.backbone.mid_channels, context, mask_levels, deep_supervision)
        # Optional learned projection of the RoiPool vector (metric learning); 0 keeps the raw vector.
        self.projection = nn.Linear(channels, projection) if projection else None
        # Keys are prefixed: a task named "type" would clash with nn.Module.type.
        self.heads = nn.ModuleDict({f"task_{name}": nn.Linear(channels, n) for name, n in (tasks or {}).items()})
        # How probabilities become a mask; checkpoint.load sets the rule stored in the card.
        self.mask_rule = MaskRule()
        # Autocast for the network (device.autocast): None = as this hardware suits; checkpoint.load and
        # training set it when a precision is forced.
        self.bf16: bool | None = None

    @property
    def input_multiple(self) -> int:
        """Input sides that need no padding inside the network: the stride, times 2 per mask level.
        Callers pad images with background up to it (`series_inference.model_grid`)."""
        return STRIDE * 2 ** (len(self.seg_head.levels.down) if self.seg_head.levels is not None else 0)

    @property
    def embedding_size(self) -> int:
        return self.projection.out_features if self.projection is not None else self.channels

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(coarse map at stride 4, prep features[, stride-2 features]); spatial sizes multiples of 4."""
        if any(s % STRIDE for s in images.shape[2:]):
            raise ValueError(f"images: expected spatial sizes divisible by {STRIDE}, found {tuple(images.shape[2:])}")
        if self.symmetry:
            # Two channels now: a 2D batch goes on channels-last, the layout oneDNN's bf16 kernels want.
            images = with_mirror(images)
            if images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
        return self.backbone(images)

    def segment(self, features: tuple[torch.Tensor, ...], aux: list | None = None) -> torch.Tensor:
        """Mask logits; with a list `aux`, deep supervision's coarser logits are appended to it."""
        return self.seg_head(*features, aux=aux)

    def embed(self, coarse: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(RoiPool vectors, embeddings) for boxes in input voxels: equal unless a projection is set."""
        pooled = roi_pool(coarse, boxes)
        return pooled, (self.projection(pooled) if self.projection is not None else pooled)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mask logits (N, 1, *spatial), per-task logits, and the tumour embeddings for the given boxes."""
        features = self.features(images)
        pooled, embedding = self.embed(features[0].float(), boxes)
        levels: list[torch.Tensor] = []
        out = {"mask": self.segment(features, levels), "embedding": embedding, "mask_levels": levels}
        for key, head in self.heads.items():
            out[key.removeprefix("task_")] = head(pooled)
        return out
