"""`tumorsearch bench query` fills a collection through the vector host, queries it through a real gateway and
reports every figure it promises (small and short here; the 100k figures come from the command itself)."""

from __future__ import annotations

import json

import pytest

from services.bench.query import command
from services.bench.query_archive import TYPES, payloads
from services.bench.query_load import GOAL_P95_MS, GOAL_QPS

pytestmark = pytest.mark.integration


def test_bench_reports_latency_and_throughput_per_case(tmp_path, monkeypatch):
    out = tmp_path / "figures" / "bench-query.json"
    # The caller's settings never reach the bench's servers; the expansion is set by the bench's own option.
    monkeypatch.setenv("TUMORSEARCH_GATEWAY__QUERY_EXPANSION", "0")
    assert command(["--points", "2000", "--clients", "2,4", "--rate", "50", "--duration-s", "1.5", "--warmup-s",
                    "0.5", "--query-expansion", "3", "--json", str(out), "--workdir", str(tmp_path)]) == 0
    report = json.loads(out.read_text())
    assert report["fill"]["points"] == 2000 and report["fill"]["points_per_s"] > 0
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    assert report["goal"] == {"p95_ms": GOAL_P95_MS, "qps": GOAL_QPS}
    names = [case["name"] for case in report["cases"]]
    assert names == ["no filter, open loop 50/s", "no filter, 2 clients", "no filter, 4 clients",
                     "filtered, open loop 50/s", "filtered, 2 clients", "filtered, 4 clients",
                     "no filter, 4 clients, API key"]
    open_loop = [case for case in report["cases"] if case["load"] == "open"]
    assert len(open_loop) == 2 and all(case["offered_rate_per_s"] == 50 for case in open_loop)
    # Poisson arrivals at 50/s for 1.5 s: about 75 requests; far fewer would mean the sender throttled itself.
    assert all(40 <= case["requests"] <= 120 for case in open_loop)
    assert report["goal_met_open_loop"] == all(case["meets_goal"] for case in open_loop)
    for case in report["cases"]:
        assert case["errors"] == 0, case["first_errors"]
        assert case["requests"] > 0 and case["qps"] > 0
        assert 0 < case["p50_ms"] <= case["p95_ms"] <= case["p99_ms"]
        assert case["meets_goal"] == (case["p95_ms"] <= GOAL_P95_MS and case["qps"] >= GOAL_QPS)
    unfiltered = report["cases"][1]
    assert unfiltered["mean_results"] == 10  # k=10 out of 2000
    assert report["params"]["query_expansion"] == 3
    assert all(case["mean_query_expansion"] == 3 for case in report["cases"]), "every answer used 3 neighbours"
    assert report["cases"][-1]["auth"] == "api-key"
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]  # the servers' data went with the temp folder


def test_payloads_look_like_the_archive():
    made = payloads(3000, "bench-model", seed=1)
    assert len(made) == 3000
    share = {t: sum(p.tumor_type == t for p in made) / len(made) for t in TYPES}
    assert abs(share["glioma"] - 0.47) < 0.05 and abs(share["meningioma"] - 0.23) < 0.05
    per_patient: dict[str, int] = {}
    for p in made:
        per_patient[p.patient_hash] = per_patient.get(p.patient_hash, 0) + 1
    assert max(per_patient.values()) <= 5 and sorted(per_patient.values())[len(per_patient) // 2] >= 2
    keys = {(p.study_instance_uid, p.series_instance_uid, p.tumor_index) for p in made}
    assert len(keys) == len(made)  # distinct point ids


def test_bad_client_counts_are_refused(capsys):
    assert command(["--clients", "4,x"]) == 2
    assert "--clients expected comma-separated positive integers, found '4,x'" in capsys.readouterr().err
