"""The process helper the integration fixtures rely on: groups are stopped by PID, failures show the log tail.

These start tiny `sh`/`sleep` processes (under a second each); they are what makes the server fixtures trustworthy.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from support.ports import free_port
from support.processes import (
    ProcessStartError,
    group_members,
    pid_alive,
    running,
    start_process,
    stop_pid,
)

pytestmark = pytest.mark.unit


def _wait_for_line(log: Path, prefix: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith(prefix):
                return line
        time.sleep(0.02)
    raise AssertionError(f"expected a line starting {prefix!r} in {log} within {timeout}s; found {log.read_text()!r}")


def test_stop_pid_kills_the_whole_group(tmp_path: Path):
    log = tmp_path / "group.log"
    proc = start_process(["sh", "-c", "sleep 60 & echo child=$!; wait"], log)
    child = int(_wait_for_line(log, "child=").split("=")[1])
    assert pid_alive(child)
    stop_pid(proc.pid, grace=2.0, popen=proc.popen)
    assert proc.popen.returncode is not None, "expected the leader reaped"
    assert not pid_alive(child), "expected the background child (same group) killed too"
    assert group_members(proc.pid) == []


def test_sigterm_ignoring_process_is_killed_after_grace(tmp_path: Path):
    # An ignored signal is inherited, so both sh and its sleep ignore SIGTERM and need the SIGKILL.
    proc = start_process(["sh", "-c", "trap '' TERM; echo ready; sleep 60 & wait"], tmp_path / "stubborn.log")
    _wait_for_line(proc.log_path, "ready")
    started = time.monotonic()
    proc.stop(grace=0.5)
    assert time.monotonic() - started >= 0.5, "expected SIGTERM to be tried for the whole grace period"
    assert proc.popen.returncode == -signal.SIGKILL
    assert not proc.alive()


def test_timeout_message_includes_log_tail(tmp_path: Path):
    script = "for i in $(seq 1 100); do echo line-$i; done; sleep 60"
    port = free_port()
    with pytest.raises(ProcessStartError) as failure:
        with running(["sh", "-c", script], tmp_path / "quiet.log", name="never-listens", timeout=0.5) as proc:
            _wait_for_line(proc.log_path, "line-100")
            proc.wait_for_port(port, timeout=0.3)
    message = str(failure.value)
    assert "never-listens" in message and f"127.0.0.1:{port}" in message
    assert "still not ready" in message
    assert "line-100" in message, "expected the last log line in the message"
    assert "line-1\n" not in message, "expected only the tail, not the whole log"
    assert not pid_alive(proc.pid), "expected the failed server stopped"


def test_early_exit_is_reported_with_exit_code_and_log(tmp_path: Path):
    with pytest.raises(ProcessStartError) as failure:
        with running(
            ["sh", "-c", "echo config error: no such port >&2; exit 3"],
            tmp_path / "crash.log",
            ready=lambda: False,
            what="a miracle",
            timeout=10.0,
        ):
            pass
    message = str(failure.value)
    assert "exited with code 3" in message
    assert "config error: no such port" in message


def test_predicate_exceptions_mean_not_ready_and_are_reported(tmp_path: Path):
    def refuses() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(ProcessStartError, match="ConnectionRefusedError: nobody home"):
        with running(["sleep", "60"], tmp_path / "p.log", ready=refuses, timeout=0.3):
            pass


def test_running_stops_the_process_when_the_body_raises(tmp_path: Path):
    with pytest.raises(RuntimeError, match="boom"):
        with running(["sleep", "60"], tmp_path / "s.log") as proc:
            raise RuntimeError("boom")
    assert not pid_alive(proc.pid)
