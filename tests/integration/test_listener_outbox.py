"""Redis unreachable: instances are still accepted, and handed over from the on-disk outbox when it returns."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.bench.listener import synthesize_series
from support.ports import free_port
from support.servers import start_redis
from support.listener import LISTENER_AE, study_messages

pytestmark = pytest.mark.integration


def test_instances_accepted_while_redis_is_down_are_handed_over_when_it_returns(
        listener_factory, dcmtk, tmp_path: Path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    listener = listener_factory(url)
    paths = synthesize_series(tmp_path / "series", slices=4, size=32)
    done = dcmtk.storescu(listener.port, paths, called_aet=LISTENER_AE)
    assert done.returncode == 0, f"expected C-STORE success with Redis down; found\n{done.stderr}"
    assert len(list((listener.home / "outbox").glob("*.pending"))) == 1
    with start_redis(tmp_path / "redis", port=port):
        messages = study_messages(url, wait_s=10, expect=1)
    assert [(m["instance_count"], m["handover"]) for m in messages] == [(4, 1)], messages
    assert list((listener.home / "outbox").iterdir()) == [], "expected the outbox empty after the hand-over"
