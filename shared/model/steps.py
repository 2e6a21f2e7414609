"""One optimisation step, shared by the 2D and the 3D training loops, with the running loss sums the
per-epoch history reports."""

from __future__ import annotations

import torch


def optimisation_step(loss: torch.Tensor, parts: dict[str, float], optimizer, scheduler,
                      sums: dict[str, float]) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    for key, value in {"loss": float(loss.detach()), **parts}.items():
        sums[key] = sums.get(key, 0.0) + value
