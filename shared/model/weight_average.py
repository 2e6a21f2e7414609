"""An exponential moving average of a network's weights during training (Polyak averaging).

The averaged weights are what the checkpoint ships: late in a run each step still moves the weights a
little at random, and their average sits nearer the middle of the region the steps wander in, which
usually generalises better than the last step. BatchNorm's running statistics are averaged alongside
(they belong to the weights they normalise); integer buffers (step counters) are copied.
The live weights, which training continues from, are kept in the resume state."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"weight average decay: expected a number in (0, 1), found {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights in. Early on the average follows the model more closely
        (decay (1 + n) / (10 + n) until that exceeds `decay`), so the random start is soon forgotten."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            average = self.shadow[name]
            if average.is_floating_point():
                average.mul_(decay).add_(value.detach().to(average.dtype), alpha=1 - decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
