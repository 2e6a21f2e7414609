"""Tumour-free slices made by mirroring the healthy half: only slices whose tumour keeps to one half and
whose halves mirror each other qualify; the result is mirror-symmetric, has an empty mask and no labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.model.config import TrainConfig
from shared.model.figshare import Slices
from shared.model.healthy_mirror import mirror_healthy_halves
from shared.model.tasks import MISSING
from shared.model.training import make_batch

SIZE = 64


def _brain(n: int, tumour_x: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n symmetric "brains" (a left-right symmetric random texture in an ellipse) with a bright disc
    centred at column tumour_x."""
    rng = torch.Generator().manual_seed(seed)
    half = torch.rand(n, 1, SIZE, SIZE // 2, generator=rng)
    texture = torch.cat([half, half.flip(-1)], -1)
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    ellipse = (((y - 32) / 28) ** 2 + ((x - 31.5) / 24) ** 2) < 1
    disc = ((y - 30) ** 2 + (x - tumour_x) ** 2) < 25
    images = torch.where(ellipse, texture, torch.zeros(())) * 2 - 1
    images = torch.where(disc, torch.ones(()), images)
    return images.clone(), disc[None, None].float().repeat(n, 1, 1, 1)


def test_a_one_sided_tumour_is_replaced_by_the_mirrored_healthy_half():
    images, masks = _brain(3, tumour_x=14)
    before = images.clone()
    changed = mirror_healthy_halves(images, masks, count=3)
    assert changed.all() and masks.sum() == 0
    assert torch.equal(images[..., SIZE // 2:], before[..., SIZE // 2:]), "the healthy half stays as it was"
    assert torch.equal(images[..., : SIZE // 2], images[..., SIZE // 2:].flip(-1))
    assert not torch.equal(images, before), "the tumour's half was rewritten"


def test_right_sided_tumours_mirror_the_left_half():
    images, masks = _brain(2, tumour_x=50)
    before = images.clone()
    assert mirror_healthy_halves(images, masks, count=2).all()
    assert torch.equal(images[..., : SIZE // 2], before[..., : SIZE // 2])
    assert torch.equal(images[..., SIZE // 2:], images[..., : SIZE // 2].flip(-1))


def test_a_tumour_on_the_midline_or_an_asymmetric_slice_is_left_alone():
    crossing, crossing_masks = _brain(2, tumour_x=32)
    assert not mirror_healthy_halves(crossing, crossing_masks, count=2).any()
    assert crossing_masks.sum() > 0
    noise = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    _, masks = _brain(2, tumour_x=14)
    assert not mirror_healthy_halves(noise, masks, count=2).any(), "halves that do not mirror: not a brain pair"


def test_no_more_than_count_slices_change():
    images, masks = _brain(5, tumour_x=14)
    changed = mirror_healthy_halves(images, masks, count=2)
    assert changed.tolist() == [True, True, False, False, False]
    assert masks[2:].flatten(1).sum(1).min() > 0


def test_a_batch_with_healthy_mirrors_carries_no_labels_for_them():
    n = 8
    images, masks = _brain(n, tumour_x=14)
    data = Slices(ids=np.arange(n), images=images[:, 0].numpy(), masks=masks[:, 0].numpy() > 0.5,
                  types=np.ones(n, int), folds=np.ones(n, int), spacing_mm=np.full(n, 1.0))
    config = TrainConfig(size=SIZE, batch_size=n, healthy_mirrors=0.25, negatives=0.125, augment=False)
    batch = make_batch(data, np.arange(n), config, torch.Generator().manual_seed(0))
    empty = batch["masks"].flatten(1).sum(1) == 0
    assert empty.tolist() == [True, True, False, False, False, False, False, True]
    for name, labels in batch["labels"].items():
        assert (labels[empty] == MISSING).all() and (labels[~empty] != MISSING).all(), name


def test_mirrors_and_negatives_must_leave_most_of_the_batch_with_tumours():
    with pytest.raises(ValueError, match=r"healthy mirrors: expected .* found 0\.3"):
        TrainConfig(negatives=0.25, healthy_mirrors=0.3)


def _slices(n: int) -> Slices:
    images, masks = _brain(n, tumour_x=14)
    masks[1] = 0
    masks[1, 0, 28:34, 28:36] = 1  # a tumour on the midline: this slice cannot be mirrored
    return Slices(ids=np.arange(n), images=images[:, 0].numpy(), masks=masks[:, 0].numpy() > 0.5,
                  types=np.ones(n, int), folds=np.full(n, 5), spacing_mm=np.full(n, 2.0))


@pytest.mark.parametrize("bias, expected", [(20.0, 3), (-20.0, 0)])
def test_mirrored_findings_count_what_the_rule_finds_on_the_mirrored_slices(bias, expected):
    from shared.model.checkpoint import build_model
    from shared.model.tumour_free import mirrored_slice_findings

    model = build_model(TrainConfig(channels=8, blocks=1, size=SIZE))
    with torch.no_grad():  # a mask head that calls every pixel tumour (or none)
        model.seg_head.logit.weight.zero_()
        model.seg_head.logit.bias.fill_(bias)
    result = mirrored_slice_findings(model, _slices(4), torch.device("cpu"))
    assert result == {"slices": 3, "with_finding": expected, "share": round(expected / 3, 4)}
