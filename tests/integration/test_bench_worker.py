"""`tumorsearch bench worker`: both studies go through a real worker and become searchable."""

from __future__ import annotations

import json

import pytest

from services.bench import worker

pytestmark = pytest.mark.integration


def test_bench_reports_searchable_times_and_stages(tmp_path, data_dir):
    out = tmp_path / "bench-worker.json"
    assert worker.command(["--data", str(data_dir), "--repeats", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    for name in ("single_slice", "volume"):
        assert figures[name]["state"] == "done" and figures[name]["found_by_search"], figures[name]
        assert figures[f"{name}_total_s"] > 0
        assert set(figures[name]["stages_s"]) == {"read", "decode", "model", "postprocess", "upsert"}
    assert figures["volume"]["slices"] == 155
