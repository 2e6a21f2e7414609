"""The mask rule (threshold, flip averaging): stored in the card, applied alike by inference and by the
checkpoint loader, and chosen only on a fold the choosing model never saw."""

import json

import numpy as np
import pytest
import torch

from shared.model import checkpoint
from shared.model.calibration import best_rule, check_independence, rule_grid
from shared.model.config import TrainConfig
from shared.model.inference import forward, predict
from shared.model.mask_rule import MaskRule
from shared.model.network import PisovNet

pytestmark = pytest.mark.unit
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return PisovNet(dims=2, channels=16, blocks=1, tasks={"type": 3}).eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, (3, 32, 32)).astype(np.float32)


def test_a_card_without_a_rule_means_the_plain_rule_and_bad_thresholds_are_refused():
    assert MaskRule.from_card({}) == MaskRule(0.5, False)
    assert MaskRule.from_card({"mask_rule": {"threshold": 0.3, "flip_average": True, "chosen_by": {}}}) == \
        MaskRule(0.3, True)
    with pytest.raises(ValueError, match=r"expected a probability in \(0, 1\), found 1.0"):
        MaskRule(threshold=1.0)


def test_flip_averaging_is_the_mean_of_the_image_and_its_mirror_and_keeps_the_images_own_features(model, images):
    coarse, plain = forward(model, images, CPU, bf16=False, rule=MaskRule())
    _, of_mirror = forward(model, images[:, :, ::-1].copy(), CPU, bf16=False, rule=MaskRule())
    flipped_coarse, averaged = forward(model, images, CPU, bf16=False, rule=MaskRule(0.5, True))
    assert torch.allclose(averaged, (plain + of_mirror.flip(-1)) / 2, atol=1e-6)
    assert torch.equal(flipped_coarse, coarse), "embeddings come from the unmirrored image"
    assert not torch.allclose(averaged, plain), "an untrained network is not mirror-symmetric"


def test_predict_thresholds_by_the_models_rule_unless_given_one(model, images):
    _, probability = forward(model, images, CPU, rule=MaskRule())
    model.mask_rule = MaskRule(threshold=float(probability.median()))
    try:
        by_card = predict(model, images, None, CPU)
        assert np.array_equal(by_card.masks, probability.numpy() > model.mask_rule.threshold)
        assert by_card.masks.any() and not by_card.masks.all()
        plain = predict(model, images, None, CPU, rule=MaskRule(0.99))
        assert plain.masks.sum() < by_card.masks.sum()
    finally:
        model.mask_rule = MaskRule()


def test_the_loader_reads_the_rule_from_the_card(tmp_path):
    config = TrainConfig(channels=16, blocks=1, size=32)
    checkpoint.save(tmp_path, checkpoint.build_model(config), checkpoint.new_card(config, "test", "none"), None)
    assert checkpoint.load(tmp_path)[0].mask_rule == MaskRule()
    card = json.loads((tmp_path / checkpoint.CARD).read_text())
    card["mask_rule"] = {"threshold": 0.3, "flip_average": True}
    checkpoint.write_json_atomically(tmp_path / checkpoint.CARD, card)
    assert checkpoint.load(tmp_path)[0].mask_rule == MaskRule(0.3, True)


def test_the_best_rule_has_the_highest_automatic_map_then_dice_then_is_plainer():
    assert len(rule_grid((0.5, 0.3))) == 4
    rows = [{"threshold": 0.5, "flip_average": False, "map_auto_box": 0.90, "dice": 0.70},
            {"threshold": 0.3, "flip_average": True, "map_auto_box": 0.92, "dice": 0.69},
            {"threshold": 0.4, "flip_average": True, "map_auto_box": 0.92, "dice": 0.71},
            {"threshold": 0.4, "flip_average": False, "map_auto_box": 0.92, "dice": 0.71}]
    assert best_rule(rows) == rows[3]


def test_a_cap_on_mirrored_findings_chooses_the_best_rule_under_it():
    rows = [{"threshold": 0.5, "flip_average": False, "map_auto_box": 0.90, "dice": 0.70, "mirrored_share": 0.10},
            {"threshold": 0.3, "flip_average": False, "map_auto_box": 0.91, "dice": 0.70, "mirrored_share": 0.15},
            {"threshold": 0.2, "flip_average": True, "map_auto_box": 0.93, "dice": 0.72, "mirrored_share": 0.30}]
    assert best_rule(rows) == rows[2]
    assert best_rule(rows, max_mirrored_share=0.2) == rows[1]
    assert best_rule(rows, max_mirrored_share=0.1) == rows[0]
    with pytest.raises(ValueError, match=r"at most 5.0% of the mirrored .* \(the lowest is 10.0%\)"):
        best_rule(rows, max_mirrored_share=0.05)


def test_the_rule_cannot_be_chosen_with_the_targets_test_fold():
    chooser = {"train_folds": [1, 2, 3]}
    check_independence(chooser, 4, {"test_fold": 5})
    with pytest.raises(ValueError, match="test fold 5 must stay unseen"):
        check_independence(chooser, 5, {"test_fold": 5})
    with pytest.raises(ValueError, match="test fold 2 must stay unseen"):
        check_independence(chooser, 4, {"test_fold": 2})
    with pytest.raises(ValueError, match="did not train on, found 3"):
        check_independence(chooser, 3, {"test_fold": None})


class _RampNet(torch.nn.Module):
    """A stand-in whose mask logit grows left to right across the volume's width: mirroring matters."""

    mask_rule = MaskRule()
    bf16 = None   # as the hardware suits, like a loaded PisovNet

    def features(self, x):
        return (x * 2,)

    def segment(self, features):
        ramp = torch.linspace(-3, 3, features[0].shape[-1])
        return features[0] + ramp


def test_the_3d_worker_path_averages_with_the_mirrored_volume_too():
    from services.worker.volume3d import Grid3D, predict_volume

    net = _RampNet()
    volume = np.random.default_rng(1).uniform(-1, 1, (4, 8, 8)).astype(np.float32)
    grid = Grid3D((4, 8, 6), (2.0, 2.0, 2.0), np.eye(4))
    plain, coarse = predict_volume(net, volume, grid, CPU)
    net.mask_rule = MaskRule(0.5, True)
    averaged, same_coarse = predict_volume(net, volume, grid, CPU)
    ramp = np.linspace(-3, 3, 8)
    expected = (1 / (1 + np.exp(-(2 * volume + ramp))) + 1 / (1 + np.exp(-(2 * volume + ramp[::-1])))) / 2
    assert averaged.shape == (4, 8, 6)
    assert np.allclose(averaged, expected[:, :, :6], atol=1e-6)
    assert not np.allclose(plain, averaged, atol=0.1)
    assert torch.equal(same_coarse, coarse)
