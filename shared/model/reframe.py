"""Field-of-view augmentation: some training slices are shown as a smaller field of view on a padded grid.

Every figshare slice fills the same 128-px frame (a 250 mm field of view at the model's spacing), but the
worker sees what the scanner acquired: a 200 mm field of view is 102 px at 1.96 mm, a small pituitary field
of view 64 px, each padded with background at its end (bottom and right) to the network's input multiple.
A network that only ever saw full frames misjudges such grids (docs/model.md, "Known gap: small fields of
view"). Here a share of each batch is cut to a random window of the frame (side 50-100 %, anywhere in it)
and moved to the top-left corner, the rest background, exactly as the worker pads; the mask is cut alike,
and the caller derives boxes and labels from it again (a tumour cut away leaves an empty mask)."""

from __future__ import annotations

import torch

from shared.model.series_inference import PAD_VALUE

SMALLEST_SIDE = 0.5     # of the frame: a 64-px window of the 128-px frame


def reframe_batch(images: torch.Tensor, masks: torch.Tensor, share: float,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N,1,H,W), masks (N,1,H,W) -> copies with about `share` of the samples reframed."""
    images, masks = images.clone(), masks.clone()
    height, width = images.shape[-2:]
    chosen = torch.rand(len(images), generator=generator) < share
    for i in torch.nonzero(chosen).flatten().tolist():
        h, w = (_side(n, generator) for n in (height, width))
        top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
        window = images[i, :, top:top + h, left:left + w].clone(), masks[i, :, top:top + h, left:left + w].clone()
        images[i].fill_(PAD_VALUE)
        masks[i].zero_()
        images[i, :, :h, :w], masks[i, :, :h, :w] = window
    return images, masks


def _side(full: int, generator: torch.Generator) -> int:
    fraction = SMALLEST_SIDE + (1 - SMALLEST_SIDE) * float(torch.rand(1, generator=generator))
    return max(1, round(full * fraction))
