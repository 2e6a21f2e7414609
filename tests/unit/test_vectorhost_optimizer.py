"""The vector store host's background optimizer: it waits until writes go quiet, runs once per quiet
collection, holds the host's lock while it runs, and reports the collection pending until then."""

import threading
import time

import pytest

from services.vectorhost.optimizer import BackgroundOptimizer

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, lock: threading.RLock, fail: bool = False) -> None:
        self.calls: list[tuple[str, float, bool]] = []
        self.lock = lock
        self.fail = fail

    def __call__(self, collection: str) -> bool:
        held = _held_by_caller(self.lock)
        self.calls.append((collection, time.monotonic(), held))
        if self.fail:
            raise RuntimeError("engine said no")
        return True


def _held_by_caller(lock: threading.RLock) -> bool:
    """True when the calling thread holds `lock` (an RLock reports its owner through _is_owned)."""
    return lock._is_owned()  # noqa: SLF001 - the only way to ask an RLock who holds it


def _wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_optimizes_once_after_writes_go_quiet_and_under_the_hosts_lock():
    lock = threading.RLock()
    record = Recorder(lock)
    optimizer = BackgroundOptimizer(record, lock, quiet_s=0.3).start()
    try:
        last_write = 0.0
        for _ in range(5):  # a burst of writes keeps pushing the optimisation back
            optimizer.written("tumors__a")
            last_write = time.monotonic()
            time.sleep(0.1)
        assert optimizer.pending("tumors__a")
        assert _wait_for(lambda: not optimizer.pending("tumors__a"))
        assert len(record.calls) == 1
        name, when, held = record.calls[0]
        assert name == "tumors__a" and held
        assert when - last_write >= 0.3 - 0.02
        time.sleep(0.5)
        assert len(record.calls) == 1  # nothing written since: no second run
    finally:
        optimizer.stop()


def test_a_write_during_an_optimisation_keeps_the_collection_pending():
    lock = threading.RLock()
    optimizer = BackgroundOptimizer(lambda name: optimizer.written(name) or True, lock, quiet_s=60)
    optimizer.written("tumors__b")
    optimizer.run_once("tumors__b")  # the optimize callable writes meanwhile, as a worker's upsert would
    assert optimizer.pending("tumors__b")


def test_a_failed_optimisation_is_logged_and_not_retried_until_the_next_write(caplog):
    lock = threading.RLock()
    record = Recorder(lock, fail=True)
    optimizer = BackgroundOptimizer(record, lock, quiet_s=60)
    optimizer.written("tumors__c")
    optimizer.run_once("tumors__c")
    assert not optimizer.pending("tumors__c")
    assert "segment optimisation failed" in caplog.text


def test_stop_ends_the_thread_while_it_waits():
    optimizer = BackgroundOptimizer(lambda name: True, threading.RLock(), quiet_s=60).start()
    optimizer.written("tumors__d")
    started = time.monotonic()
    optimizer.stop()
    assert time.monotonic() - started < 2
    assert not optimizer._thread.is_alive()  # noqa: SLF001
