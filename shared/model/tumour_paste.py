"""Tumours moved into other brains (after TumorCP, Yang et al. 2021, who copy tumours between CT scans
to give a small training set more tumours in more surroundings). The fold-5 gliomas our models miss
are missed where they are: the mask lands on a vessel or the cortex nearby (docs/model-experiments.md,
"What the failed fold-5 masks look like"). Each figshare tumour is only ever seen in its own brain; a
pasted one is the same tumour against other anatomy.

A slice whose tumour lies in one half (healthy_mirror.py) is first made tumour-free by mirroring its
healthy half over it, so the result holds exactly one tumour. It trains the mask, and the size and
position the caller derives again from the new mask; its type is left out (MISSING): a pituitary
tumour pasted into a hemisphere is not a case anyone would call pituitary, and the type head and the
metric term, which shape the embedding, should learn from real cases only."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from shared.model.batch import boxes_from_masks
from shared.model.healthy_mirror import mirror_healthy_halves
from shared.model.tasks import MISSING

# Pixels above this level (images in [-1, 1], background about -0.95) are anatomy.
ANATOMY_LEVEL = -0.85
# A pasted tumour lies wholly this far inside the anatomy (a share of the width), so it does not land on
# the scalp or skull: about 13 mm on the figshare field of view.
INSIDE_MARGIN = 0.05
# The pasted region fades into the recipient over twice this share of the width around the tumour.
EDGE = 0.016
PLACEMENT_TRIES = 20


def paste_tumours(images: torch.Tensor, masks: torch.Tensor, types: torch.Tensor, count: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """In place on (N,1,H,W) images and masks and (N,) types: up to `count` slices that qualify for a
    healthy mirror get it, then the tumour of another slice of the batch at a random place inside
    their anatomy, and a MISSING type. Returns which slices were mirrored and which of them received a
    tumour, (N,) each. A mirrored slice where no place fits stays tumour-free (empty mask)."""
    mirrored = mirror_healthy_halves(images, masks, count)
    donors = ((masks[:, 0] > 0.5).flatten(1).any(1) & ~mirrored).nonzero()[:, 0]
    pasted = torch.zeros(len(images), dtype=torch.bool)
    if not len(donors):
        return mirrored, pasted
    for recipient in mirrored.nonzero()[:, 0].tolist():
        donor = int(donors[torch.randint(len(donors), (1,), generator=generator)])
        pasted[recipient] = _paste_one(images, masks, donor, recipient, generator)
        if pasted[recipient]:
            types[recipient] = MISSING
    return mirrored, pasted


def _paste_one(images: torch.Tensor, masks: torch.Tensor, donor: int, recipient: int,
               generator: torch.Generator) -> bool:
    width = images.shape[-1]
    tumour = masks[donor, 0] > 0.5
    edge = max(1, round(EDGE * width))
    alpha = _soft_region(tumour, edge)
    boxes, _ = boxes_from_masks((alpha > 0)[None, None].float())
    y0, x0, y1, x1 = boxes[0].tolist()
    patch = tumour[y0:y1, x0:x1]
    inside = _inside_anatomy(images[recipient, 0], max(1, round(INSIDE_MARGIN * width)))
    place = _placement(inside, patch, generator)
    if place is None:
        return False
    ty, tx = place
    source, weight = images[donor, 0, y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    target = images[recipient, 0, ty:ty + y1 - y0, tx:tx + x1 - x0]
    # Only the donor's anatomy moves, not the air beside a tumour at the skull, and the brightness is
    # matched on that anatomy (the landing place lies inside the recipient's anatomy by construction).
    weight = torch.where((source > ANATOMY_LEVEL) | patch, weight, torch.zeros(()))
    ring = (weight > 0) & ~patch
    # Shift the donor's intensities so its surroundings match the recipient's where it lands.
    offset = (target[ring].mean() - source[ring].mean()) if bool(ring.any()) else 0.0
    target.copy_((weight * (source + offset) + (1 - weight) * target).clamp(-1, 1))
    masks[recipient, 0, ty:ty + y1 - y0, tx:tx + x1 - x0] = patch.float()
    return True


def _soft_region(tumour: torch.Tensor, edge: int) -> torch.Tensor:
    """1 on the tumour, fading to 0 over the 2 * `edge` pixels around it (grown by `edge`, then blurred)."""
    kernel = 2 * edge + 1
    grown = F.max_pool2d(tumour[None, None].float(), kernel, stride=1, padding=edge)
    # Beyond the frame counts as 0, so a tumour at the frame's edge fades there too, its own pixels kept whole.
    blurred = F.avg_pool2d(grown, kernel, stride=1, padding=edge, count_include_pad=True)[0, 0]
    return torch.maximum(blurred, tumour.float())


def _inside_anatomy(image: torch.Tensor, margin: int) -> torch.Tensor:
    """Pixels at least `margin` pixels inside the anatomy (eroded with a square)."""
    outside = F.pad((image <= ANATOMY_LEVEL).float()[None, None], (margin,) * 4, value=1.0)  # beyond the frame too
    near_outside = F.max_pool2d(outside, 2 * margin + 1, stride=1)[0, 0] > 0
    return ~near_outside


def _placement(inside: torch.Tensor, tumour_patch: torch.Tensor,
               generator: torch.Generator) -> tuple[int, int] | None:
    """A random top-left corner where every tumour pixel of the patch lands inside; None if the tries
    find none."""
    height, width = inside.shape
    h, w = tumour_patch.shape
    if h > height or w > width:
        return None
    for _ in range(PLACEMENT_TRIES):
        ty = int(torch.randint(height - h + 1, (1,), generator=generator))
        tx = int(torch.randint(width - w + 1, (1,), generator=generator))
        if bool(inside[ty:ty + h, tx:tx + w][tumour_patch].all()):
            return ty, tx
    return None
