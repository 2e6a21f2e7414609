"""The network's arithmetic follows the hardware: bf16 autocast only where the CPU computes bf16 natively
(on AVX2-only CPUs emulated bf16 was about 6x slower than fp32: docs/model-bench.md, "CPUs without bf16")."""

from pathlib import Path

import numpy as np
import pytest
import torch

from shared.model.device import autocast, cpu_has_native_bf16, precision_name, reduced_precision

pytestmark = pytest.mark.unit

CPU = torch.device("cpu")
NATIVE_FLAGS = {"avx512_bf16", "amx_bf16", "amx_tile"}


def _cpu_flags() -> set[str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return set(next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags")))


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux's /proc/cpuinfo to compare with")
def test_native_bf16_is_what_the_cpu_flags_say():
    assert cpu_has_native_bf16() == bool(_cpu_flags() & NATIVE_FLAGS)


def test_auto_takes_bf16_on_the_cpu_only_where_it_is_native():
    assert reduced_precision(CPU) == cpu_has_native_bf16()
    assert precision_name(CPU) == ("bf16" if cpu_has_native_bf16() else "fp32")


def test_auto_takes_fp16_on_cuda():
    cuda = torch.device("cuda")
    assert reduced_precision(cuda) is True
    assert precision_name(cuda) == "fp16"


def test_a_forced_precision_overrides_the_hardware():
    assert reduced_precision(CPU, "bf16") is True
    assert reduced_precision(CPU, "fp32") is False
    assert precision_name(CPU, True) == "bf16" and precision_name(CPU, False) == "fp32"


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"expected one of auto, bf16, fp32, found 'fp8'"):
        reduced_precision(CPU, "fp8")


@pytest.mark.parametrize("enabled", [True, False, None])
def test_autocast_runs_the_network_in_the_precision_asked(enabled):
    conv = torch.nn.Conv2d(1, 2, 3)
    with autocast(CPU, enabled):
        out = conv(torch.randn(1, 1, 8, 8))
    wanted = reduced_precision(CPU) if enabled is None else enabled
    assert out.dtype == (torch.bfloat16 if wanted else torch.float32)


def test_a_checkpoint_loaded_with_a_forced_precision_runs_in_it():
    # TUMORSEARCH_PRECISION reaches the model commands this way: checkpoint.load sets model.bf16, and the
    # one forward pass of evaluation takes it unless told otherwise.
    from shared.model import checkpoint
    from shared.model.inference import forward

    image = np.random.default_rng(0).standard_normal((1, 64, 64)).astype(np.float32)
    outputs = {}
    for precision in ("fp32", "bf16", "auto"):
        model, _ = checkpoint.load(checkpoint.SHIPPED, CPU, precision)
        assert model.bf16 is {"fp32": False, "bf16": True, "auto": None}[precision]
        outputs[precision] = forward(model, image, CPU)[1]
    assert torch.equal(outputs["fp32"], forward(model, image, CPU, bf16=False)[1])
    assert torch.equal(outputs["bf16"], forward(model, image, CPU, bf16=True)[1])
    assert not torch.equal(outputs["fp32"], outputs["bf16"])
    assert torch.equal(outputs["auto"], outputs["bf16" if cpu_has_native_bf16() else "fp32"])
    with pytest.raises(ValueError, match="expected one of auto, bf16, fp32"):
        checkpoint.load(checkpoint.SHIPPED, CPU, "half")
