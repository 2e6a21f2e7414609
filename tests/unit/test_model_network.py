import pytest
import torch

from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.network import PisovNet, roi_pool

pytestmark = pytest.mark.unit


def test_roi_pool_equals_the_max_of_the_upsampled_map_under_the_box():
    coarse = torch.randn(3, 5, 8, 8)
    full = coarse.repeat_interleave(4, 2).repeat_interleave(4, 3)  # F: up x4 by repetition
    boxes = torch.tensor([[5, 9, 14, 22], [0, 0, 32, 32], [13, 2, 14, 3]])
    pooled = roi_pool(coarse, boxes)
    for i, (y0, x0, y1, x1) in enumerate(boxes.tolist()):
        assert torch.equal(pooled[i], full[i, :, y0:y1, x0:x1].amax((1, 2)))


def test_roi_pool_gives_an_empty_box_its_cell_and_checks_shapes():
    coarse = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert roi_pool(coarse, torch.tensor([[5, 5, 5, 5]])).item() == 5.0
    with pytest.raises(ValueError, match="boxes: expected shape"):
        roi_pool(coarse, torch.tensor([[0, 0, 4]]))


@pytest.mark.parametrize("dims,shape,box", [(2, (2, 1, 32, 32), [0, 0, 16, 16]),
                                            (3, (1, 1, 16, 16, 16), [0, 0, 0, 8, 8, 8])])
def test_one_code_path_for_2d_and_3d(dims, shape, box):
    model = PisovNet(dims=dims, channels=16, blocks=1, tasks={"type": 3, "size": 3})
    out = model(torch.randn(shape), torch.tensor([box] * shape[0]))
    assert out["mask"].shape == (shape[0], 1, *shape[2:])
    assert out["embedding"].shape == (shape[0], 16)
    assert out["type"].shape == (shape[0], 3) and out["size"].shape == (shape[0], 3)


def test_a_projection_changes_the_embedding_size_but_not_the_heads_input():
    model = PisovNet(dims=2, channels=16, blocks=1, tasks={"type": 3}, projection=8)
    out = model(torch.randn(1, 1, 16, 16), torch.tensor([[0, 0, 8, 8]]))
    assert out["embedding"].shape == (1, 8) and out["type"].shape == (1, 3)


def test_invalid_dims_are_refused():
    with pytest.raises(ValueError, match="dims: expected 2 or 3"):
        PisovNet(dims=4)


def test_the_segmentation_head_width_is_a_setting_kept_in_the_checkpoint(tmp_path):

    config = TrainConfig(channels=16, blocks=1, seg_channels=24, size=32)
    model = checkpoint.build_model(config)
    assert model.seg_head.block.body[0].in_channels == 24
    card = checkpoint.new_card(config, "test", "none")
    assert card["architecture"]["seg_channels"] == 24
    checkpoint.save(tmp_path, model, card, None)
    loaded, _ = checkpoint.load(tmp_path)
    assert loaded.seg_head.logit.in_channels == 24
    assert PisovNet(dims=2, channels=16, blocks=1).seg_head.logit.in_channels == 16, "cards without it: 16"


@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 32, 32)), (3, (1, 1, 16, 16, 16))])
def test_a_stride_2_level_feeds_the_mask_and_leaves_the_embedding_at_stride_4(dims, shape):
    model = PisovNet(dims=dims, channels=16, blocks=1, tasks={"type": 3}, mid_level=True)
    coarse, early, mid = model.features(torch.randn(shape))
    assert coarse.shape[2:] == tuple(s // 4 for s in shape[2:]) and mid.shape[2:] == tuple(s // 2 for s in shape[2:])
    assert early.shape[2:] == shape[2:]
    box = [0] * dims + [8] * dims
    out = model(torch.randn(shape), torch.tensor([box] * shape[0]))
    assert out["mask"].shape == (shape[0], 1, *shape[2:]) and out["embedding"].shape == (shape[0], 16)
    out["mask"].sum().backward()
    assert model.backbone.mid[0].weight.grad.abs().sum() > 0, "the mask loss must reach the stride-2 level"


@pytest.mark.parametrize("dims,size", [(2, 64), (3, 32)])
def test_the_context_pyramid_lets_a_far_corner_change_the_mask(dims, size):
    """Without it a logit sees about +-14 voxels of input; with it, the whole image (via pooled cells)."""
    torch.manual_seed(0)
    shape = (1, 1) + (size,) * dims
    corner, far = (0, 0) + (slice(0, 4),) * dims, (0, 0) + (size - 1,) * dims
    image = torch.randn(shape)
    changed = image.clone()
    changed[corner] += 3.0
    for context, expect_change in ((False, False), (True, True)):
        model = PisovNet(dims=dims, channels=16, blocks=1, context=context).eval()  # eval: no batch statistics
        with torch.no_grad():
            before, after = (model.segment(model.features(x))[far] for x in (image, changed))
        assert bool(before != after) == expect_change, f"context={context}"


@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 64, 64)), (3, (1, 1, 32, 32, 32))])
def test_mask_levels_widen_the_mask_context_and_leave_the_embedding_alone(dims, shape):
    """Two levels below stride 4 (stride 16): a change in one corner reaches the far corner's logit,
    which the plain one-block head cannot see; the embedding is the same RoiPool of the backbone."""
    torch.manual_seed(0)
    corner, far = (0, 0) + (slice(0, 4),) * dims, (0, 0) + (shape[2] - 1,) * dims
    image = torch.randn(shape)
    changed = image.clone()
    changed[corner] += 3.0
    box = torch.tensor([[0] * dims + [8] * dims] * shape[0])
    for levels, expect_change in ((0, False), (2, True)):
        torch.manual_seed(1)
        model = PisovNet(dims=dims, channels=16, blocks=1, tasks={"type": 3}, mask_levels=levels).eval()
        with torch.no_grad():
            before, after = (model.segment(model.features(x))[far] for x in (image, changed))
            out = model(image, box)
        assert bool(before != after) == expect_change, f"mask_levels={levels}"
        assert out["mask"].shape == (shape[0], 1, *shape[2:]) and out["embedding"].shape == (shape[0], 16)
        torch.testing.assert_close(out["embedding"], roi_pool(model.features(image)[0], box))
    widths = [step[0].out_channels for step in model.seg_head.levels.down]
    assert widths == [24, 32], "each level widens by half the backbone's channels"


def test_mask_levels_are_stored_in_the_card_and_rebuilt_on_load(tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=32, mask_levels=2)
    card = checkpoint.new_card(config, "test", "none")
    assert card["architecture"]["mask_levels"] == 2
    checkpoint.save(tmp_path, checkpoint.build_model(config), card, None)
    loaded, _ = checkpoint.load(tmp_path)
    assert len(loaded.seg_head.levels.down) == 2
    with pytest.raises(ValueError, match="mask levels: expected 0..3"):
        TrainConfig(mask_levels=4)


@pytest.mark.parametrize("dims,shape", [(2, (1, 1, 36, 44)), (3, (1, 1, 4, 8, 12)), (3, (1, 1, 12, 20, 8))])
def test_mask_levels_take_maps_of_any_size(dims, shape):
    """Stride-4 maps thinner than, or not a multiple of, 2**levels (a thin 3D slab as in `bench model`, a
    slice whose side is an odd number of cells) give a finite mask of the input's shape; the levels see
    the map edge-replicated at its end, as if the image went on."""
    torch.manual_seed(0)
    model = PisovNet(dims=dims, channels=16, blocks=1, mid_level=True, mask_levels=2).eval()
    with torch.no_grad():
        mask = model(torch.randn(shape), torch.tensor([[0] * dims + [4] * dims]))["mask"]
        coarse = torch.randn(1, 16, *(s // 4 for s in shape[2:]))
        padded = torch.nn.functional.pad(coarse, [p for s in reversed(coarse.shape[2:]) for p in (0, -s % 4)],
                                         mode="replicate")
        direct, by_hand = model.seg_head.levels(coarse), model.seg_head.levels(padded)
    assert mask.shape == (1, 1, *shape[2:]) and torch.isfinite(mask).all()
    torch.testing.assert_close(direct, by_hand[(..., *(slice(0, s) for s in coarse.shape[2:]))])


def test_the_worker_grid_pads_slices_to_the_models_input_multiple():
    """A slice of 26 cells at stride 4 would be padded inside the mask levels; the worker pads the image
    with background instead, to the model's input multiple (stride x 2 per level)."""
    from shared.model.series_inference import model_grid

    assert PisovNet(channels=16, blocks=1).input_multiple == 4
    model = PisovNet(channels=16, blocks=1, mask_levels=2)
    assert model.input_multiple == 16
    grid = model_grid(240, 200, (0.9, 0.9), 2.0, model.input_multiple)
    assert grid.shape == (108, 90) and grid.padded == (112, 96)
    assert model_grid(240, 200, (0.9, 0.9), 2.0).padded == (108, 92)
    with pytest.raises(ValueError, match="expected a positive multiple of 4, found 6"):
        model_grid(240, 200, (0.9, 0.9), 2.0, 6)
