"""`tumorsearch bench broker` on the redis-server option: a real celery worker, killed mid-task, redelivers."""

from __future__ import annotations

import json

import pytest

from services.bench import broker
from shared.broker.embedded import DEBIAN_REDIS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DEBIAN_REDIS.exists(), reason="Debian redis-server not installed"),
]


def test_bench_measures_throughput_and_redelivery_after_sigkill(tmp_path):
    out = tmp_path / "bench-broker.json"
    code = broker.command(["--tasks", "20", "--options", "redis-server", "--visibility-timeout", "3",
                           "--json", str(out)])
    report = json.loads(out.read_text())
    figures = report["options"]["redis-server"]
    assert code == 0, figures
    assert figures["software"].startswith("Redis ")
    assert figures["end_to_end_per_s"] > 0
    # Pool child killed (the OOM case): reject-on-worker-lost requeues at once.
    assert figures["child_kill_redelivered_after_s"] is not None
    # Whole worker killed: the task comes back after the visibility timeout, within one restore sweep.
    assert figures["group_kill_redelivered_after_s"] is not None
    assert figures["group_kill_redelivered_after_s"] < 3 + 10
