"""`tumorsearch bench vectorstore` produces every figure docs/vectorstore.md quotes, for both engines."""

from __future__ import annotations

import json

import pytest

from services.bench.vectorstore import ENGINES, command

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Local mode performs exact"),
              pytest.mark.filterwarnings("ignore:Payload indexes have no effect")]


def _run(tmp_path, *extra: str) -> dict:
    out = tmp_path / "figures.json"
    assert command(["--workdir", str(tmp_path), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def _check_engine(figures: dict, points: int) -> None:
    upsert, query, reopen, crash = figures["upsert"], figures["query"], figures["reopen"], figures["crash"]
    assert upsert["points"] == points and upsert["points_per_s"] > 0 and not upsert["capped"]
    assert 0 < query["p50_ms"] <= query["p95_ms"]
    assert query["all_hits_pass_filter"] and query["mean_hits"] == 10
    assert reopen["count"] == points and reopen["all_points_back"]
    assert crash["opened"] and crash["acknowledged"] >= 2000
    assert crash["found"] == crash["acknowledged"] and crash["all_acknowledged_found"]
    assert all(t["killed_mid_run"] for t in crash["trials"])


def test_bench_reports_every_figure_for_both_engines(tmp_path):
    report = _run(tmp_path, "--points", "2000", "--queries", "20", "--crash-after", "2", "--crash-trials", "1")
    assert set(report["engines"]) == set(ENGINES)
    assert report["machine"]["cores"] >= 1 and report["params"]["points"] == 2000
    for figures in report["engines"].values():
        _check_engine(figures, 2000)
    assert list(tmp_path.iterdir()) == [tmp_path / "figures.json"]  # the stores went with the temp folder


def test_the_upsert_cap_is_reported_honestly(tmp_path):
    report = _run(tmp_path, "--engines", "qdrant-local", "--points", "50000", "--cap-s", "0.5",
                  "--queries", "5", "--crash-trials", "0")
    upsert = report["engines"]["qdrant-local"]["upsert"]
    assert upsert["capped"] and 0 < upsert["points"] < 50000 and upsert["asked"] == 50000
    assert report["engines"]["qdrant-local"]["reopen"]["count"] == upsert["points"]
    assert report["engines"]["qdrant-local"]["crash"]["skipped"]


def test_unknown_engines_are_refused(capsys):
    assert command(["--engines", "edge,faiss"]) == 2
    assert "expected a comma-separated subset of edge,qdrant-local, found 'edge,faiss'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_bench_at_full_scale(tmp_path):
    """100k points: the embedded engine must keep every acknowledged point and stay fast."""
    report = _run(tmp_path, "--points", "100000", "--cap-s", "900")
    edge = report["engines"]["edge"]
    _check_engine(edge, 100_000)
    assert edge["upsert"]["points_per_s"] > 2000 and edge["query"]["p95_ms"] < 100
    local = report["engines"]["qdrant-local"]
    assert local["crash"]["opened"] and local["query"]["all_hits_pass_filter"]
