"""The CI run of `bench system`: 40 figshare studies from folds 4 and 5 go Orthanc -> listener -> worker ->
gateway; every study is processed, none fails, and each fold-5 study's ranking through the gateway equals
the offline ranking of `tumorsearch evaluate`'s code on the same images."""

from __future__ import annotations

import json

import pytest

from services.bench import system

pytestmark = pytest.mark.integration


def test_the_system_ranks_exactly_like_the_offline_model(tmp_path, data_dir, monkeypatch):
    """With query expansion on (the gateway's second search is what could drift from the offline code)."""
    monkeypatch.setenv("TUMORSEARCH_GATEWAY__QUERY_EXPANSION", "10")
    out = tmp_path / "bench-system.json"
    code = system.command(["--data", str(data_dir), "--folds", "4,5", "--per-fold", "20", "--work",
                           str(tmp_path / "work"), "--json", str(out)])
    figures = json.loads(out.read_text())
    assert code == 0 and figures["studies"] == 40 and figures["failed_studies"] == 0, figures
    assert figures["queries"] == 20 and figures["rankings_equal"] == 20, figures
    assert figures["query_expansion"] == 10, figures
    assert abs(figures["map_system"] - figures["map_offline"]) <= 0.001, figures
