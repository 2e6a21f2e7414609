"""Lower-resolution views in augmentation (`--blur`, `--low-res`) and the zoom range (`--scale`): each image
has a 1-in-4 chance of a blur and of a lower resolution, each with its own strength, images only; the rest
and every mask stay as the affine left them; an option that is off draws no random numbers; the options
reach the training configuration and are checked."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from services.modeling.train import config_from_args, parser
from shared.model import training
from shared.model.augment import (LOWER_RESOLUTION_CHANCE, Augmentation, _lower_resolution, augment_batch,
                                  gaussian_blur, lower_resolution_draws)
from shared.model.config import TrainConfig
from shared.model.figshare import Slices


def _checkerboard(n: int, size: int = 32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((y + x) % 2) * 2 - 1).float()[None, None].repeat(n, 1, 1, 1)


def _high_frequency(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontal neighbours, per image."""
    return (images[..., 1:] - images[..., :-1]).abs().flatten(1).mean(1)


def test_gaussian_blur_gives_each_image_its_own_normalised_kernel():
    impulse = torch.zeros(2, 1, 31, 31)
    impulse[:, :, 15, 15] = 1
    out = gaussian_blur(impulse, torch.tensor([1.0, 2.0]))
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(2), atol=1e-5)
    # the centre of a sampled 2D Gaussian is about 1 / (2 pi sd^2)
    assert float(out[0, 0, 15, 15]) == pytest.approx(1 / (2 * math.pi), rel=0.02)
    assert float(out[1, 0, 15, 15]) == pytest.approx(1 / (8 * math.pi), rel=0.02)
    flat = torch.full((1, 1, 16, 16), -1.0)  # replicated edges: background stays background
    assert torch.allclose(gaussian_blur(flat, torch.tensor([1.5])), flat)
    assert torch.allclose(gaussian_blur(impulse, torch.zeros(2)), impulse)  # sd 0 is no blur, not NaN
    expected = r"expected images \(N, C, H, W\) and N sds, found \(2, 1, 31, 31\) and \(3,\)"
    with pytest.raises(ValueError, match=expected):
        gaussian_blur(impulse, torch.ones(3))


def test_draws_are_per_image_and_within_their_ranges():
    blurred, sds, coarse, factors = lower_resolution_draws(
        4000, Augmentation(blur=2.0, low_res=0.5), torch.Generator().manual_seed(0))
    for chosen in (blurred, coarse):
        assert abs(float(chosen.float().mean()) - LOWER_RESOLUTION_CHANCE) < 0.03
    assert abs(float((blurred & coarse).float().mean()) - LOWER_RESOLUTION_CHANCE ** 2) < 0.02  # independent
    assert 0 <= float(sds.min()) < 0.05 and 1.95 < float(sds.max()) <= 2.0 and float(sds.std()) > 0.5
    assert 0.5 <= float(factors.min()) < 0.52 and 0.98 < float(factors.max()) <= 1.0


def test_an_option_that_is_off_draws_nothing():
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    images = _checkerboard(16)
    assert torch.equal(_lower_resolution(images, Augmentation(), generator), images)
    assert torch.equal(generator.get_state(), before)
    _, sds, _, factors = lower_resolution_draws(8, Augmentation(blur=1.0), generator)
    assert sds.max() > 0 and torch.equal(factors, torch.ones(8))


@pytest.mark.parametrize("options", [{"blur": 1.0}, {"low_res": 0.5}])
def test_chosen_images_lose_detail_and_the_rest_is_untouched(options):
    images = _checkerboard(400)
    out = _lower_resolution(images, Augmentation(**options), torch.Generator().manual_seed(0))
    changed = (out != images).flatten(1).any(1)
    assert 0.15 < float(changed.float().mean()) < 0.32  # a blur with sd near 0 may leave an image as it was
    assert torch.equal(out[~changed], images[~changed])
    # a one-pixel checkerboard is the finest detail there is: what was touched lost much of it (blur
    # strengths are drawn from 0 to the largest, so the mean, not every image, tells)
    assert float(_high_frequency(out[changed]).max()) <= float(_high_frequency(images[:1])) + 1e-4
    assert float(_high_frequency(out[changed]).mean()) < 0.6 * float(_high_frequency(images[:1]))
    assert out.shape == images.shape


def test_low_res_factors_reach_the_images():
    # vertical stripes with a period of 8 px survive 32 -> 29 px (factor 0.9) and mostly vanish near 8 px (0.25)
    stripes = torch.sin(torch.arange(32) * 2 * math.pi / 8)[None, None, None].repeat(300, 1, 32, 1)
    for low_res, kept in ((0.9, lambda hf: hf.min() > 0.5), (0.25, lambda hf: hf.min() < 0.45)):
        out = _lower_resolution(stripes, Augmentation(low_res=low_res), torch.Generator().manual_seed(1))
        changed = (out != stripes).flatten(1).any(1)
        ratio = _high_frequency(out[changed]) / _high_frequency(stripes[:1])
        assert changed.any() and kept(ratio), (low_res, ratio.min())


def test_noise_comes_after_the_blur():
    flat = torch.zeros(400, 1, 32, 32)

    def noise_levels(blur: float) -> torch.Tensor:
        aug = Augmentation(rotate_deg=0, scale=0, shift=0, mirror=False, noise=0.1, blur=blur)
        out, _ = augment_batch(flat, torch.zeros_like(flat), aug, torch.Generator().manual_seed(4))
        return _high_frequency(out[..., 8:24, 8:24])

    # a blur after the noise would smooth it away on about a fifth of the images: the low end would collapse
    assert float(noise_levels(3.0).quantile(0.15)) > 0.7 * float(noise_levels(0.0).quantile(0.15))


def test_masks_never_follow_and_any_frame_shape_works():
    masks = (torch.rand(6, 1, 24, 40, generator=torch.Generator().manual_seed(2)) > 0.7).float()
    images = masks * 2 - 1
    plain = augment_batch(images, masks, Augmentation(), torch.Generator().manual_seed(3))
    coarse = augment_batch(images, masks, Augmentation(blur=2.0, low_res=0.3), torch.Generator().manual_seed(3))
    assert torch.equal(plain[1], coarse[1])          # same geometry, same masks
    assert not torch.equal(plain[0], coarse[0]) and coarse[0].shape == (6, 1, 24, 40)
    one = augment_batch(images[:1], masks[:1], Augmentation(blur=2.0, low_res=0.3), torch.Generator().manual_seed(0))
    assert one[0].shape == (1, 1, 24, 40)


def test_the_options_reach_the_augmentation(monkeypatch):
    seen = []

    def fake_augment(images, masks, aug, generator):
        seen.append(aug)
        return images, masks

    monkeypatch.setattr(training, "augment_batch", fake_augment)
    n, size = 4, 32
    masks = np.zeros((n, size, size), bool)
    masks[:, 8:16, 8:16] = True
    data = Slices(ids=np.arange(n), images=np.zeros((n, size, size), np.float32), masks=masks,
                  types=np.zeros(n, int), folds=np.ones(n, int), spacing_mm=np.full(n, 1.0))
    args = parser().parse_args(["--out", "unused", "--size", str(size), "--batch-size", str(n),
                                "--scale", "0.3", "--blur", "1.0", "--low-res", "0.5"])
    training.make_batch(data, np.arange(n), config_from_args(args), torch.Generator().manual_seed(0))
    assert (seen[0].scale, seen[0].blur, seen[0].low_res) == (0.3, 1.0, 0.5)
    defaults = config_from_args(parser().parse_args(["--out", "unused"]))
    assert (defaults.scale, defaults.blur, defaults.low_res) == (Augmentation().scale, 0.0, 0.0) == (0.15, 0.0, 0.0)


@pytest.mark.parametrize("field, value", [("scale", 0.6), ("blur", 4.0), ("low_res", 0.1), ("low_res", 1.0)])
def test_out_of_range_values_are_refused_naming_the_option(field, value):
    name = field.replace("_", " ")
    with pytest.raises(ValueError, match=rf"^{name}: expected .* found {re.escape(str(value))}$"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("scale", 0.0), ("scale", 0.49), ("blur", 3.0), ("low_res", 0.25),
                                          ("low_res", 0.99)])
def test_the_documented_edges_are_accepted(field, value):
    assert getattr(TrainConfig(**{field: value}), field) == value
