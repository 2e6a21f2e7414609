"""The symmetry input: each image beside its mirror about its own content's centre."""

import pytest
import torch

from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.network import PisovNet
from shared.model.symmetry import content_centre, mirror_about_content, with_mirror


def _head(width: int, start: int, height: int = 6) -> torch.Tensor:
    """A left-right symmetric 'head' (a bright column pair and a dimmer middle) on background -1,
    starting at column `start` of a (1, 1, height, width) grid."""
    image = torch.full((1, 1, height, width), -1.0)
    image[..., start:start + 7] = torch.tensor([1.0, 0.2, 0.2, 0.6, 0.2, 0.2, 1.0])
    return image


@pytest.mark.parametrize("start", [0, 3, 9])
def test_a_symmetric_head_is_its_own_mirror_wherever_it_sits_on_the_grid(start):
    """The mirror is about the content, not the grid: a head padded at its end (as the worker pads small
    slices) or shifted by augmentation still mirrors onto itself."""
    image = _head(16, start)
    assert float(content_centre(image)) == pytest.approx(start + 3)
    torch.testing.assert_close(mirror_about_content(image), image)


def test_a_one_sided_lesion_appears_on_the_other_side_of_the_mirror():
    image = _head(16, 4)
    image[..., 2, 5] = 0.9                      # a lesion left of the centre (column 7)
    mirrored = mirror_about_content(image)
    centre = float(content_centre(image))
    target = round(2 * centre - 5)
    assert mirrored[0, 0, 2, target] > 0.5 and mirrored[0, 0, 2, 5] < 0.5, \
        f"expected the lesion mirrored to column {target} about {centre:.2f}"


def test_outside_the_grid_the_mirror_reads_background_and_a_blank_image_stays_blank():
    image = _head(16, 9)                        # centre 12: columns 0-7 mirror from beyond the grid
    mirrored = mirror_about_content(image)
    assert torch.all(mirrored[..., :8] == -1.0), "beyond the grid: the image's minimum (background)"
    blank = torch.full((2, 1, 4, 8), -1.0)
    torch.testing.assert_close(mirror_about_content(blank), blank)


def test_each_image_of_a_batch_is_mirrored_about_its_own_centre():
    batch = torch.cat([_head(16, 0), _head(16, 9)])
    torch.testing.assert_close(mirror_about_content(batch), batch)
    assert with_mirror(batch).shape == (2, 2, 6, 16)


@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 32, 32)), (3, (1, 1, 8, 8, 32))])
def test_a_symmetry_network_takes_one_channel_images_and_reads_the_mirror(dims, shape):
    """Callers (worker, evaluation) still pass one channel; the network's first convolution sees two,
    and changing the image on one side changes the mask on the other side (through the mirror)."""
    torch.manual_seed(0)
    model = PisovNet(dims=dims, channels=16, blocks=1, symmetry=True).eval()
    assert model.backbone.prep[0].in_channels == 2
    image = torch.randn(shape)
    box = torch.tensor([[0] * dims + [8] * dims] * shape[0])
    changed = image.clone()
    changed[..., -4:] += 1.0                    # the far right edge only
    with torch.no_grad():
        before, after = model(image, box)["mask"], model(changed, box)["mask"]
    assert before.shape == (shape[0], 1, *shape[2:])
    # Pixels on the left, far beyond the receptive field of the right edge, see it through the mirror.
    assert not torch.allclose(before[..., :4], after[..., :4])


def test_symmetry_is_stored_in_the_card_and_rebuilt_on_load(tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=32, symmetry=True)
    card = checkpoint.new_card(config, "test", "none")
    assert card["architecture"]["symmetry"] is True and card["architecture"]["in_channels"] == 1
    checkpoint.save(tmp_path, checkpoint.build_model(config), card, None)
    loaded, _ = checkpoint.load(tmp_path)
    assert loaded.symmetry and loaded.backbone.prep[0].in_channels == 2
    older = dict(config.to_json())
    del older["symmetry"]                       # a card written before the option existed
    assert TrainConfig.from_json(older).symmetry is False
