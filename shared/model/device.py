"""Where the model runs: CUDA when present, else the CPU, and in which precision.

On the CPU, bf16 autocast with channels_last is 1.5-3x faster than fp32 where the CPU computes bf16 natively
(AVX-512 BF16 or AMX), and about 6x *slower* where it does not (AVX2-only CPUs emulate it; docs/model-bench.md,
"CPUs without bf16"). So the default precision follows the hardware: bf16 where it is native, fp32 where it
is not. GPU paths (fp16 autocast) exist but are not measured here."""

from __future__ import annotations

import contextlib
import functools

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def pick_device(choice: str = "auto") -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device: expected CUDA (TUMORSEARCH_WORKER__DEVICE=cuda), found no GPU")
        return torch.device("cuda")
    if choice not in ("auto", "cpu"):
        raise ValueError(f"device: expected auto, cpu or cuda, found {choice!r}")
    return torch.device("cpu")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX tiles), as PyTorch reads it."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older or newer PyTorch without these probes: ask oneDNN instead
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def reduced_precision(device: torch.device, choice: str = "auto") -> bool:
    """Whether to run under autocast: `choice` bf16 / fp32 forces it; auto takes it on CUDA, and on the
    CPU only where bf16 is native (elsewhere emulated bf16 is several times slower than fp32)."""
    if choice not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, found {choice!r}")
    if choice != "auto":
        return choice == "bf16"
    return device.type != "cpu" or cpu_has_native_bf16()


def precision_name(device: torch.device, enabled: bool | None = None) -> str:
    """What `autocast(device, enabled)` runs the network in: bf16, fp16 or fp32 (for cards and logs)."""
    if not (reduced_precision(device) if enabled is None else enabled):
        return "fp32"
    return "bf16" if device.type == "cpu" else "fp16"


def autocast(device: torch.device, enabled: bool | None = None):
    """bf16 autocast on CPU, fp16 on CUDA; a no-op when disabled (fp32). `enabled` None: as
    `reduced_precision(device)` decides for this hardware."""
    if enabled is None:
        enabled = reduced_precision(device)
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
