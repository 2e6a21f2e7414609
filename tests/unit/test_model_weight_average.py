"""The moving average of the weights that a training run can ship instead of its last step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shared.model.config import TrainConfig
from shared.model.weight_average import WeightAverage


def test_the_weight_average_follows_the_weights_slowly_and_copies_counters():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.9)
    start = average.shadow["0.weight"].clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 5
    for _ in range(100):
        average.update(model)
    assert torch.allclose(average.shadow["0.weight"], start + 1, atol=1e-3), "converges to constant weights"
    assert int(average.shadow["1.num_batches_tracked"]) == 5
    average = WeightAverage(model, decay=0.99)
    before = average.shadow["0.weight"].clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    average.update(model)  # the first update is weighted (1 + 1) / (10 + 1): early steps count more
    assert torch.allclose(average.shadow["0.weight"], before + 9 / 11)
    with pytest.raises(ValueError, match="weight average: expected 0 .off. or a decay in \\[0.9, 1\\), found 0.5"):
        TrainConfig(weight_average=0.5)
