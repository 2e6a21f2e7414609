"""`tumorsearch bench model` produces every figure docs/model-bench.md quotes, and bf16 does not break the net.

Small sizes and one thread keep it fast (and steady on a CPU shared with a training job); each
configuration still runs in its own process, as in the full bench.
"""

from __future__ import annotations

import json

import pytest

from services.bench.model import CONFIGS, PRECISIONS, command

pytestmark = pytest.mark.integration

SMALL = ["--repeats", "2", "--volume-repeats", "1", "--batch", "4", "--threads", "1", "--slice-size", "64",
         "--volume-shape", "12x40x40"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench-model") / "figures.json"
    assert command([*SMALL, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_every_figure_is_reported_for_both_precisions(report):
    assert not report["failed_configs"] and set(report["configs"]) == set(CONFIGS)
    assert report["preprocess_2d_ms"] > 0
    for precision in PRECISIONS:
        assert set(report["slice_2d_ms"][precision]) == {"batch1_ms", "batch4_ms_per_slice"}
        for key in ("volume_2d_slicewise_s", "volume_3d_s"):
            assert set(report[key][precision]) == {"preprocess_s", "network_s", "total_s"}
        for key in ("slice_2d_ms", "volume_2d_slicewise_s", "volume_3d_s"):
            assert all(v > 0 for v in report[key][precision].values()), (key, report[key])
    assert set(report["peak_rss_mb"]) == set(CONFIGS) and all(v > 0 for v in report["peak_rss_mb"].values())
    assert len(report["bf16_speedup"]) == 8


def test_the_machine_and_the_load_are_recorded(report):
    machine = report["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["torch"].startswith("2.")
    assert machine["threads"] == 1
    # The precision the worker would pick here is stated beside the flags it was read from.
    assert machine["native_bf16"] is bool({"avx512_bf16", "amx_bf16", "amx_tile"} & set(machine["bf16_cpu_flags"]))
    assert machine["auto_precision"] == ("bf16" if machine["native_bf16"] else "fp32")
    assert len(report["load_average"]["start"]) == 3 and len(report["load_average"]["end"]) == 3
    assert all("load_average" in r for r in report["configs"].values())


def test_the_model_inputs_follow_the_spacings(report):
    # 40 px at 1 mm -> 1.96 mm: 20 px in plane; 12x40x40 at 2 mm -> 6x20x20; each side padded to the model's
    # input multiple, as the worker pads (4, times 2 per mask level: 16 for the shipped head).
    levels = report["configs"]["volume_2d-fp32"]["figures"]["model"]["mask_levels"]
    up = lambda n: -(-n // (4 * 2 ** levels)) * 4 * 2 ** levels  # noqa: E731
    assert report["configs"]["volume_2d-fp32"]["figures"]["model_input"] == [12, 1, up(20), up(20)]
    assert report["configs"]["volume_3d-bf16"]["figures"]["model_input"] == [1, 1, up(6), up(20), up(20)]


def test_bf16_agrees_with_fp32(report):
    for dims in ("2d", "3d"):
        agreement = report["bf16_agreement"][dims]
        assert agreement["mask_logit_correlation"] > 0.99, agreement
        assert agreement["embedding_cosine_min"] > 0.99, agreement
        assert agreement["mask_decision_agreement"] > 0.98, agreement


def test_a_subset_runs_only_what_was_asked(tmp_path):
    out = tmp_path / "figures.json"
    assert command([*SMALL, "--configs", "preprocess,slice_2d-bf16", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert set(figures["configs"]) == {"preprocess", "slice_2d-bf16"}
    assert set(figures["slice_2d_ms"]) == {"bf16"} and figures["volume_3d_s"] == {}
    assert figures["bf16_speedup"] == {} and figures["bf16_agreement"] is None


def test_unknown_configs_and_shapes_are_refused(capsys):
    assert command(["--configs", "slice_2d-fp16"]) == 2
    assert "found 'slice_2d-fp16'" in capsys.readouterr().err
    assert command(["--volume-shape", "155x240"]) == 2
    assert "--volume-shape DxHxW" in capsys.readouterr().err


def test_a_configuration_that_outlasts_its_timeout_is_stopped_and_reported(tmp_path):
    # Emulated bf16 made one 3D configuration run for more than 12 minutes (docs/model-bench.md): the bench
    # must stop it and still write the report, with the reason, and say by its exit code that it is incomplete.
    # (Half a second is less than the child needs to import torch, so the stop is certain on any machine.)
    out = tmp_path / "figures.json"
    assert command([*SMALL, "--configs", "volume_3d-bf16", "--config-timeout", "0.5", "--json", str(out)]) == 1
    figures = json.loads(out.read_text())
    assert figures["failed_configs"] == {
        "volume_3d-bf16": "expected to finish within --config-timeout 0.5 s, found it still running; stopped"}
    assert figures["volume_3d_s"] == {} and figures["machine"]["cpu"]
