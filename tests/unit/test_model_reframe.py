"""Field-of-view augmentation: a window of the frame in the top-left corner, background elsewhere,
image and mask cut alike."""

from __future__ import annotations

import pytest
import torch

from shared.model.config import TrainConfig
from shared.model.reframe import reframe_batch
from shared.model.series_inference import PAD_VALUE as BACKGROUND


def _batch(n: int = 8, side: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.linspace(-0.9, 0.9, n * side * side).reshape(n, 1, side, side)
    masks = torch.zeros(n, 1, side, side)
    masks[:, :, 10:20, 12:22] = 1
    return images, masks


def test_reframed_samples_are_a_window_of_the_frame_in_the_corner_with_background_beyond():
    images, masks = _batch()
    out, out_masks = reframe_batch(images, masks, 1.0, torch.Generator().manual_seed(0))
    for i in range(len(images)):
        rows = int((out[i, 0, :, 0] != BACKGROUND).sum())
        cols = int((out[i, 0, 0, :] != BACKGROUND).sum())
        assert 16 <= rows <= 32 and 16 <= cols <= 32, (rows, cols)
        assert (out[i, 0, rows:, :] == BACKGROUND).all() and (out[i, 0, :, cols:] == BACKGROUND).all()
        window = out[i, 0, :rows, :cols]
        hits = [(t, l) for t in range(33 - rows) for l in range(33 - cols)
                if torch.equal(images[i, 0, t:t + rows, l:l + cols], window)]
        assert len(hits) == 1, "the corner holds one window of the original frame"
        top, left = hits[0]
        assert torch.equal(out_masks[i, 0, :rows, :cols], masks[i, 0, top:top + rows, left:left + cols])
        assert out_masks[i, 0, rows:, :].sum() == 0 and out_masks[i, 0, :, cols:].sum() == 0
    assert torch.equal(images, _batch()[0]), "the input batch is not changed in place"


def test_share_zero_leaves_the_batch_alone_and_the_share_is_checked():
    images, masks = _batch()
    out, out_masks = reframe_batch(images, masks, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, images) and torch.equal(out_masks, masks)
    with pytest.raises(ValueError, match=r"reframe: expected a share of the batch in \[0, 1\], found 1.5"):
        TrainConfig(reframe=1.5)

