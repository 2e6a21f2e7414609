"""`tumorsearch bench listener` on a small series: both servers receive every file and the figures add up."""

from __future__ import annotations

import json

import pytest

from services.bench import listener

pytestmark = pytest.mark.integration


def test_bench_reports_both_rates_and_their_ratio(tmp_path, dcmtk, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the bench works under the current directory (same disk as a real home)
    out = tmp_path / "bench-listener.json"
    assert listener.command(["--slices", "12", "--size", "64", "--repeats", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["listener_per_s"] > 0 and figures["storescp_per_s"] > 0
    assert figures["ratio_vs_storescp"] == pytest.approx(figures["listener_per_s"] / figures["storescp_per_s"],
                                                         abs=0.002)
    assert figures["fsync_before_ack"] is True and figures["slices"] == 12
    assert not list(tmp_path.glob(".bench-listener-*")), "expected the bench's work folder to be removed"
