"""Augmentation keeps images and masks aligned and in range; anatomy-free negatives carry no tumour and
no labels, and reach the network normalised as a real frame would."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.model.augment import Augmentation, augment_batch
from shared.model.config import TrainConfig
from shared.model.figshare import Slices
from shared.model.negatives import anatomy_free
from shared.model.tasks import MISSING
from shared.model.training import make_batch


def _disc_batch(n: int = 8, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (((y - 24) ** 2 + (x - 36) ** 2) < 100).float()
    images = (disc * 1.5 - 0.5)[None, None].repeat(n, 1, 1, 1)
    return images, disc[None, None].repeat(n, 1, 1, 1)


def test_geometry_moves_image_and_mask_together_and_intensity_stays_in_range():
    images, masks = _disc_batch()
    aug = Augmentation(bias_field=0.4, noise=0.1)
    moved, moved_masks = augment_batch(images, masks, aug, torch.Generator().manual_seed(3))
    assert moved.min() >= -1 and moved.max() <= 1
    for image, mask in zip(moved[:, 0], moved_masks[:, 0].bool()):
        # the bright disc went where its mask went: inside is brighter than outside
        assert mask.sum() > 200 and image[mask].mean() > image[~mask].mean() + 0.5


def test_bias_field_and_noise_change_intensities_only_when_asked():
    images, masks = _disc_batch()
    plain, _ = augment_batch(images, masks, Augmentation(), torch.Generator().manual_seed(5))
    shaded, _ = augment_batch(images, masks, Augmentation(bias_field=0.4), torch.Generator().manual_seed(5))
    noisy, _ = augment_batch(images, masks, Augmentation(noise=0.1), torch.Generator().manual_seed(5))
    assert not torch.allclose(plain, shaded) and not torch.allclose(plain, noisy)
    # noise is high-frequency: neighbouring background pixels now differ
    background = noisy[:, 0, :8, :8]
    assert float((background[:, 1:] - background[:, :-1]).abs().mean()) > 0.01


def test_anatomy_free_frames_are_normalised_like_real_ones():
    frames = anatomy_free(24, 32, torch.Generator().manual_seed(0))
    assert frames.shape == (24, 1, 32, 32)
    flat = frames.flatten(1)
    # percentile scaling maps 1 % of pixels to -1 and 1 % to +1, whatever the frame was
    assert torch.all((flat <= -0.999).float().mean(1) >= 0.005)
    assert torch.all((flat >= 0.999).float().mean(1) >= 0.005)


def test_a_batch_with_negatives_has_empty_masks_and_missing_labels_there():
    rng = np.random.default_rng(0)
    n, size = 8, 32
    masks = np.zeros((n, size, size), bool)
    masks[:, 10:20, 12:22] = True
    data = Slices(ids=np.arange(n), images=rng.uniform(-1, 1, (n, size, size)).astype(np.float32), masks=masks,
                  types=np.zeros(n, int), folds=np.ones(n, int), spacing_mm=np.full(n, 1.0))
    config = TrainConfig(size=size, batch_size=n, negatives=0.25, bias_field=0.3, noise=0.05)
    batch = make_batch(data, np.arange(n), config, torch.Generator().manual_seed(2))
    assert batch["masks"][-2:].sum() == 0 and batch["masks"][:-2].flatten(1).sum(1).min() > 0
    for name, labels in batch["labels"].items():
        assert (labels[-2:] == MISSING).all(), name
        assert (labels[:-2] != MISSING).all(), name


def test_the_share_of_negatives_is_checked():
    with pytest.raises(ValueError, match=r"negatives: expected .* found 0\.6"):
        TrainConfig(negatives=0.6)
