"""Tumours pasted into mirrored healthy brains: the recipient ends with the donor's tumour alone, wholly
inside its anatomy, the same shape and texture (shifted in brightness only), a random place per seed, no
type label; the donor is left as it was; a tumour that fits nowhere is not pasted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.model.config import TrainConfig
from shared.model.figshare import Slices
from shared.model.healthy_mirror import mirror_healthy_halves
from shared.model.tasks import MISSING
from shared.model.training import make_batch
from shared.model.tumour_paste import ANATOMY_LEVEL, INSIDE_MARGIN, paste_tumours

SIZE = 64
Y, X = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
HEAD = (((Y - 32) / 28) ** 2 + ((X - 31.5) / 26) ** 2) < 1


def _batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n left-right symmetric textured heads (values in [-0.6, 0.4], background -1), each with a
    one-sided tumour: slice i a 4 x (5 + i) rectangle of its own bright texture at columns 12.."""
    rng = torch.Generator().manual_seed(seed)
    half = torch.rand(n, 1, SIZE, SIZE // 2, generator=rng)
    texture = torch.cat([half, half.flip(-1)], -1) - 0.6
    images = torch.where(HEAD, texture, torch.full((), -1.0))
    masks = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(n):
        masks[i, 0, 28:32, 12:17 + i] = 1
    bright = 0.5 + 0.5 * torch.rand(n, 1, SIZE, SIZE, generator=rng)
    return torch.where(masks > 0, bright, images), masks


def _crop(mask: torch.Tensor) -> torch.Tensor:
    rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def test_the_recipient_holds_the_donor_tumour_alone_inside_its_anatomy_without_a_type():
    images, masks = _batch(2)
    before_images, before_masks = images.clone(), masks.clone()
    types = torch.tensor([0, 1])
    mirrored, pasted = paste_tumours(images, masks, types, count=1, generator=torch.Generator().manual_seed(0))
    assert mirrored.tolist() == [True, False] and pasted.tolist() == [True, False]
    assert types.tolist() == [MISSING, 1]
    assert torch.equal(images[1], before_images[1]) and torch.equal(masks[1], before_masks[1]), "donor untouched"
    new, donor = masks[0, 0] > 0, before_masks[1, 0] > 0
    assert torch.equal(_crop(new), _crop(donor)), "the donor's tumour, moved, is the recipient's only one"
    margin = round(INSIDE_MARGIN * SIZE)
    near_outside = torch.nn.functional.max_pool2d((~HEAD).float()[None, None], 2 * margin + 1, 1, margin)[0, 0] > 0
    assert not (new & near_outside).any(), f"every tumour pixel at least {margin} px inside the head"
    shift = images[0, 0][new] - before_images[1, 0][donor]
    assert torch.allclose(shift, shift[0].expand_as(shift), atol=1e-5), "same texture, one brightness offset"


def test_the_tumour_takes_the_brightness_of_its_new_surroundings():
    images, masks = _batch(2)
    # Faint symmetric textures (so the halves still mirror), the recipient's anatomy 0.2 brighter.
    images[0] = torch.where(HEAD, 0.1 + 0.05 * images[0], images[0])
    images[1] = torch.where(HEAD, 0.05 * images[1] + torch.where(masks[1] > 0, 0.3, -0.1), images[1])  # unclipped
    before = images.clone()
    paste_tumours(images, masks, torch.tensor([0, 1]), 1, torch.Generator().manual_seed(0))
    shift = images[0, 0][masks[0, 0] > 0] - before[1, 0][masks[1, 0] > 0]
    assert shift.mean() == pytest.approx(0.2, abs=0.01)


def test_a_donor_at_the_edge_of_its_head_brings_no_background_along():
    images, masks = _batch(2)
    masks[1] = 0
    masks[1, 0, 28:34, 58:61] = 1  # at the right edge of the head: air beside it
    images[1] = torch.where(masks[1] > 0, torch.full((), 0.9), torch.where(HEAD, images[1], torch.full((), -1.0)))
    assert paste_tumours(images, masks, torch.tensor([0, 1]), 1, torch.Generator().manual_seed(0))[1][0]
    around = (torch.nn.functional.max_pool2d(masks[:1], 9, 1, 4)[0, 0] > 0) & HEAD
    assert images[0, 0][around].min() > -0.7, "no air or dark halo pasted into the brain"
    tumour = images[0, 0][masks[0, 0] > 0]
    assert tumour.max() < 1 and tumour.std() < 1e-5, "brightness matched on anatomy only: no clipping"


def test_away_from_the_pasted_tumour_the_recipient_is_its_mirrored_healthy_self():
    images, masks = _batch(2)
    mirrored, mirrored_masks = images.clone(), masks.clone()
    mirror_healthy_halves(mirrored, mirrored_masks, 1)
    paste_tumours(images, masks, torch.tensor([0, 1]), 1, torch.Generator().manual_seed(0))
    near = torch.nn.functional.max_pool2d(masks[:1], 7, 1, 3)[0, 0] > 0
    assert torch.equal(images[0, 0][~near], mirrored[0, 0][~near])
    assert (images[0, 0][~HEAD] == -1).all() and ANATOMY_LEVEL > -1


def test_each_seed_places_the_tumour_somewhere_inside_and_the_same_seed_in_the_same_place():
    margin = round(INSIDE_MARGIN * SIZE)
    near_outside = torch.nn.functional.max_pool2d((~HEAD).float()[None, None], 2 * margin + 1, 1, margin)[0, 0] > 0

    def place(seed: int) -> tuple[int, int]:
        images, masks = _batch(2)
        assert paste_tumours(images, masks, torch.tensor([0, 1]), 1, torch.Generator().manual_seed(seed))[1][0]
        assert not (masks[0, 0].bool() & near_outside).any(), f"seed {seed}: a tumour pixel near the scalp"
        rows, cols = masks[0, 0].any(1).nonzero(), masks[0, 0].any(0).nonzero()
        return int(rows[0]), int(cols[0])

    assert place(3) == place(3)
    assert len({place(seed) for seed in range(20)}) >= 10


def test_a_tumour_that_fits_nowhere_is_not_pasted_and_the_recipient_stays_tumour_free():
    images, masks = _batch(2)
    masks[1] = 0
    masks[1, 0, 6:58, 36:60] = 1  # one-sided, but larger than the head's interior
    types = torch.tensor([0, 1])
    mirrored, pasted = paste_tumours(images, masks, types, 1, torch.Generator().manual_seed(0))
    assert mirrored.tolist() == [True, False] and not pasted.any()
    assert masks[0].sum() == 0 and types.tolist() == [0, 1]


def test_without_a_donor_nothing_is_pasted():
    images, masks = _batch(2)
    assert not paste_tumours(images, masks, torch.tensor([0, 1]), 2, torch.Generator().manual_seed(0))[1].any()
    assert masks.sum() == 0, "both mirrored, none left to give a tumour"


def test_a_batch_with_pasted_tumours_keeps_size_and_position_labels_but_no_type():
    n = 8
    images, masks = _batch(n)
    data = Slices(ids=np.arange(n), images=images[:, 0].numpy(), masks=masks[:, 0].numpy() > 0.5,
                  types=np.ones(n, int), folds=np.ones(n, int), spacing_mm=np.full(n, 1.0))
    config = TrainConfig(size=SIZE, batch_size=n, tumour_paste=0.25, augment=False)
    batch = make_batch(data, np.arange(n), config, torch.Generator().manual_seed(0))
    labels = batch["labels"]
    assert (labels["type"] == MISSING).tolist() == [True, True] + [False] * 6
    for name in ("size", "horizontal", "vertical"):
        assert (labels[name] != MISSING).all(), name
    assert (batch["masks"].flatten(1).sum(1) > 0).all()


def test_healthy_mirrors_beside_pastes_take_other_slices():
    n = 8
    images, masks = _batch(n)
    data = Slices(ids=np.arange(n), images=images[:, 0].numpy(), masks=masks[:, 0].numpy() > 0.5,
                  types=np.ones(n, int), folds=np.ones(n, int), spacing_mm=np.full(n, 1.0))
    config = TrainConfig(size=SIZE, batch_size=n, tumour_paste=0.25, healthy_mirrors=0.25, augment=False)
    batch = make_batch(data, np.arange(n), config, torch.Generator().manual_seed(0))
    has = (batch["masks"].flatten(1).sum(1) > 0).tolist()
    assert has == [True, True, False, False, True, True, True, True], "pasted 0-1 kept, 2-3 mirrored"
    assert (batch["labels"]["type"] == MISSING).tolist() == [True] * 4 + [False] * 4


def test_the_paste_share_is_checked():
    with pytest.raises(ValueError, match=r"tumour paste: expected a share of the batch in \[0, 0\.5\], found 0\.6"):
        TrainConfig(tumour_paste=0.6)
