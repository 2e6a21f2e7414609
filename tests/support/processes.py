"""Server processes for tests: start in their own process group, wait until ready, stop by PID, reap.

Why a process group: servers may fork (Redis BGSAVE, shell wrappers); signalling the group stops all of them, and
a new session keeps Ctrl-C in the terminal from reaching them before our own cleanup runs.
Every process started here is recorded, so a hook can fail the run when one outlives its test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from support.ports import LOCALHOST, port_is_open

DEFAULT_GRACE = 5.0
LOG_TAIL_LINES = 40


class ProcessStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        """True while the leader or any other member of its process group still runs (zombies excluded)."""
        return self.popen.poll() is None or group_alive(self.pid)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<log {self.log_path} unreadable: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll predicate until true; raise ProcessStartError (with log tail) on timeout or early exit.

        Exceptions from the predicate count as "not ready yet" (connection refused while the server starts).
        """
        deadline = time.monotonic() + timeout
        last_error = "predicate returned False"
        while True:
            try:
                if predicate():
                    return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported if it persists
                last_error = f"{type(exc).__name__}: {exc}"
            code = self.popen.poll()
            if code is not None:
                self._fail(what, timeout, f"process exited with code {code} before becoming ready")
            if time.monotonic() >= deadline:
                self._fail(what, timeout, f"still not ready ({last_error})")
            time.sleep(0.05)

    def wait_for_port(self, port: int, timeout: float = 30.0, host: str = LOCALHOST) -> None:
        self.wait_until(lambda: port_is_open(port, host), timeout, f"TCP {host}:{port} to accept connections")

    def stop(self, grace: float = DEFAULT_GRACE) -> None:
        stop_pid(self.pid, grace=grace, popen=self.popen)

    def _fail(self, what: str, timeout: float, found: str) -> None:
        # Stop first so a failed start never leaks a half-started server.
        self.stop(grace=1.0)
        raise ProcessStartError(
            f"{self.name} (pid {self.pid}): expected {what} within {timeout:.1f}s; found: {found}\n"
            f"command: {' '.join(self.argv)}\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{self.log_tail()}"
        )


_started: list[ManagedProcess] = []


def started_processes() -> list[ManagedProcess]:
    """Every process started through this module in this interpreter (for leak checks)."""
    return list(_started)


def start_process(
    argv: Sequence[str],
    log_path: Path,
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start argv in a new session (its own process group), stdout+stderr appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    proc = ManagedProcess(name or Path(argv[0]).name, list(argv), log_path, popen)
    _started.append(proc)
    return proc


@contextmanager
def running(
    argv: Sequence[str],
    log_path: Path,
    *,
    ready: Callable[[], bool] | None = None,
    what: str = "to become ready",
    timeout: float = 30.0,
    grace: float = DEFAULT_GRACE,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[ManagedProcess]:
    """Start, wait for ready() (if given), yield, and always stop by PID."""
    proc = start_process(argv, log_path, name=name, env=env, cwd=cwd)
    try:
        if ready is not None:
            proc.wait_until(ready, timeout, what)
        yield proc
    finally:
        proc.stop(grace=grace)


def stop_pid(pid: int, *, grace: float = DEFAULT_GRACE, popen: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group led by pid, SIGKILL whatever is left after grace seconds, reap the leader.

    popen, when given, is used to reap the leader (only the parent can); without it we just wait for the group
    to vanish. Raises if something survives SIGKILL, since that would leak into later tests.
    """
    _signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, popen, grace):
        return
    _signal_group(pid, signal.SIGKILL)
    if not _wait_gone(pid, popen, 5.0):
        raise RuntimeError(f"expected process group {pid} gone after SIGKILL; found members {group_members(pid)}")


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) PIDs in process group pgid."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []  # fast path: the kernel knows no member at all
    except PermissionError:
        pass  # someone else's process shares the id; look closer below
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # already gone


def _wait_gone(pid: int, popen: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if popen is not None:
            popen.poll()  # reaps the leader as soon as it exits
        leader_gone = popen.returncode is not None if popen is not None else not pid_alive(pid)
        if leader_gone and not group_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
