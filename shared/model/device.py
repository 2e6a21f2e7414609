"""Where the model runs: CUDA when present, else the CPU with bf16 autocast and channels_last
(3-9x faster than fp32 on these CPUs). GPU paths exist but are not measured here."""

from __future__ import annotations

import contextlib

import torch


def pick_device(choice: str = "auto") -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device: expected CUDA (TUMORSEARCH_WORKER__DEVICE=cuda), found no GPU")
        return torch.device("cuda")
    if choice not in ("auto", "cpu"):
        raise ValueError(f"device: expected auto, cpu or cuda, found {choice!r}")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CPU, fp16 on CUDA; a no-op when disabled (fp32 reference runs)."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
