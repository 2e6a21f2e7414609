"""Lower-resolution views in augmentation (`--blur`, `--low-res`) and the zoom range (`--scale`): a random
quarter of the batch is blurred or down- and up-sampled, images only; the rest and every mask stay as the
affine left them; the options reach the augmentation and are checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from services.modeling.train import parser
from shared.model import training
from shared.model.augment import RESOLUTION_SHARE, Augmentation, _resolution, augment_batch, gaussian_blur
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


@pytest.mark.parametrize("options", [{"blur": 1.0}, {"low_res": 0.5}])
def test_a_random_quarter_loses_detail_and_the_rest_is_untouched(options):
    images = _checkerboard(400)
    out = _resolution(images, Augmentation(**options), torch.Generator().manual_seed(0))
    changed = (out != images).flatten(1).any(1)
    assert abs(float(changed.float().mean()) - RESOLUTION_SHARE) < 0.07
    assert torch.equal(out[~changed], images[~changed])
    # a one-pixel checkerboard is the finest detail there is: what was touched lost much of it (blur
    # strengths are drawn from 0 to the largest, so the mean, not every image, tells)
    assert float(_high_frequency(out[changed]).max()) <= float(_high_frequency(images[:1])) + 1e-4
    assert float(_high_frequency(out[changed]).mean()) < 0.6 * float(_high_frequency(images[:1]))
    assert out.shape == images.shape


def test_low_res_factors_stay_in_their_range():
    # vertical stripes with a period of 8 px survive 32 -> 29 px (factor 0.9) and mostly vanish near 8 px (0.25)
    stripes = torch.sin(torch.arange(32) * 2 * math.pi / 8)[None, None, None].repeat(300, 1, 32, 1)
    for low_res, kept in ((0.9, lambda hf: hf.min() > 0.5), (0.25, lambda hf: hf.min() < 0.45)):
        out = _resolution(stripes, Augmentation(low_res=low_res), torch.Generator().manual_seed(1))
        changed = (out != stripes).flatten(1).any(1)
        ratio = _high_frequency(out[changed]) / _high_frequency(stripes[:1])
        assert changed.any() and kept(ratio), (low_res, ratio.min())


def test_off_by_default_and_masks_never_follow():
    images, masks = _checkerboard(16), (torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(2)) > 0.7)
    assert torch.equal(_resolution(images, Augmentation(), torch.Generator().manual_seed(0)), images)
    plain = augment_batch(images, masks.float(), Augmentation(), torch.Generator().manual_seed(3))
    coarse = augment_batch(images, masks.float(), Augmentation(blur=2.0, low_res=0.3), torch.Generator().manual_seed(3))
    assert torch.equal(plain[1], coarse[1])          # same geometry, same masks
    assert not torch.equal(plain[0], coarse[0])


def test_the_options_reach_the_augmentation(monkeypatch):
    seen = []
    monkeypatch.setattr(training, "augment_batch", lambda images, masks, aug, generator: (seen.append(aug), (images, masks))[1])
    n, size = 4, 32
    masks = np.zeros((n, size, size), bool)
    masks[:, 8:16, 8:16] = True
    data = Slices(ids=np.arange(n), images=np.zeros((n, size, size), np.float32), masks=masks,
                  types=np.zeros(n, int), folds=np.ones(n, int), spacing_mm=np.full(n, 1.0))
    args = parser().parse_args(["--out", "unused", "--scale", "0.3", "--blur", "1.0", "--low-res", "0.5"])
    config = TrainConfig(size=size, batch_size=n, scale=args.scale, blur=args.blur, low_res=args.low_res)
    training.make_batch(data, np.arange(n), config, torch.Generator().manual_seed(0))
    assert (seen[0].scale, seen[0].blur, seen[0].low_res) == (0.3, 1.0, 0.5)
    assert parser().parse_args(["--out", "unused"]).scale == Augmentation().scale == TrainConfig().scale


@pytest.mark.parametrize("field, value", [("scale", 0.6), ("blur", 4.0), ("low_res", 0.1), ("low_res", 1.0)])
def test_out_of_range_values_are_refused_with_what_was_found(field, value):
    with pytest.raises(ValueError, match=rf"augmentation: expected .* found .*{value}"):
        TrainConfig(**{field: value})
