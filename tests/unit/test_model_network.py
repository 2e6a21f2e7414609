import pytest
import torch

from shared.model.network import PisovNet, roi_pool

pytestmark = pytest.mark.unit


def test_roi_pool_is_the_max_of_the_feature_map_under_the_box():
    features = torch.zeros(2, 3, 8, 8)
    features[0, :, 1, 2] = torch.tensor([5.0, -1.0, 2.0])   # the one cell under box 0 (rows 4..8, cols 8..12)
    features[0, :, 6, 6] = 100.0                            # outside box 0
    features[1, 1, 7, 7] = 3.0
    boxes = torch.tensor([[4, 8, 8, 12], [28, 28, 32, 32]])
    pooled = roi_pool(features, boxes)
    assert pooled[0].tolist() == [5.0, -1.0, 2.0]
    assert pooled[1].tolist() == [0.0, 3.0, 0.0]


def test_roi_pool_widens_a_tiny_box_to_one_feature_cell_and_checks_shapes():
    features = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert roi_pool(features, torch.tensor([[5, 5, 5, 5]])).item() == 5.0
    with pytest.raises(ValueError, match="boxes: expected shape"):
        roi_pool(features, torch.tensor([[0, 0, 4]]))


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
