"""Deep supervision of the mask levels: a coarse tumour logit per level, scored in training only."""

import pytest
import torch

from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.losses import coarse_mask_loss, mask_loss
from shared.model.network import PisovNet
from shared.model.training import batch_loss


@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 64, 64)), (3, (1, 1, 16, 32, 32))])
def test_each_mask_level_gives_a_coarse_logit_and_the_mask_is_unchanged(dims, shape):
    torch.manual_seed(0)
    model = PisovNet(dims=dims, channels=16, blocks=1, mask_levels=2, deep_supervision=True).eval()
    image, box = torch.randn(shape), torch.tensor([[0] * dims + [8] * dims] * shape[0])
    with torch.no_grad():
        out = model(image, box)
        plain = model.segment(model.features(image))
    coarse = [tuple(level.shape[2:]) for level in out["mask_levels"]]
    assert coarse == [tuple(s // 16 for s in shape[2:]), tuple(s // 8 for s in shape[2:])], "coarsest first"
    torch.testing.assert_close(out["mask"], plain)


def test_without_deep_supervision_there_are_no_coarse_logits_and_no_extra_weights():
    model = PisovNet(channels=16, blocks=1, mask_levels=2)
    out = model(torch.randn(1, 1, 32, 32), torch.tensor([[0, 0, 8, 8]]))
    assert out["mask_levels"] == [] and model.seg_head.levels.aux is None


def test_the_coarse_loss_scores_each_level_against_the_pooled_mask():
    target = torch.zeros(2, 1, 32, 32)
    target[:, :, 8:24, 8:24] = 1
    every = torch.ones(2, dtype=torch.bool)
    right = [torch.logit(torch.nn.functional.adaptive_avg_pool2d(target, s).clamp(0.01, 0.99)) for s in (2, 4)]
    wrong = [-r for r in right]
    assert coarse_mask_loss(right, target, every) < coarse_mask_loss(wrong, target, every)
    pooled = torch.nn.functional.adaptive_avg_pool2d(target, 4)
    expected = (mask_loss(right[0], torch.nn.functional.adaptive_avg_pool2d(target, 2), every)
                + mask_loss(right[1], pooled, every)) / 2
    torch.testing.assert_close(coarse_mask_loss(right, target, every), expected)


def test_training_adds_the_term_and_the_card_rebuilds_the_heads(tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=32, mask_levels=2, deep_supervision=0.5,
                         tasks=("segmentation", "type"))
    model = checkpoint.build_model(config)
    masks = torch.zeros(4, 1, 32, 32)
    masks[:, :, 8:20, 8:20] = 1
    batch = {"images": torch.randn(4, 1, 32, 32), "masks": masks, "boxes": torch.tensor([[8, 8, 20, 20]] * 4),
             "labels": {"type": torch.tensor([0, 1, 2, 0])}}
    _, parts = batch_loss(model, batch, config)
    assert parts["mask_levels"] > 0
    checkpoint.save(tmp_path, model, checkpoint.new_card(config, "test", "none"), None)
    loaded, _ = checkpoint.load(tmp_path)
    assert loaded.seg_head.levels.aux is not None
    with pytest.raises(ValueError, match="deep supervision: expected a positive weight with --mask-levels"):
        TrainConfig(deep_supervision=0.5)
