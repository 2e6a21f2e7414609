"""Child programs of `tumorsearch run`: start each in its own process group, stop each by PID.

Own process groups, because a terminal's Ctrl-C would otherwise reach every child at once and the
supervisor could not stop them in order (listener first, so nothing new arrives; broker last, so
what is in flight can still be acknowledged). Stopping a group also reaches a Celery pool's children.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger("tumorsearch.run")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True, stdin=subprocess.DEVNULL)
        log.info("started", extra={"child": self.name, "pid": self.process.pid})

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exited(self) -> int | None:
        """The exit code if the child has ended, else None."""
        return self.process.poll() if self.process else None

    def terminate(self) -> None:
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        """Wait until `deadline` (monotonic) for the child, then SIGKILL its group; always reap."""
        if self.process is None:
            return
        try:
            code = self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("did not stop in time; killing", extra={"child": self.name})
            _signal_group(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        # The leader may be gone while members of its group (pool processes) linger: end them too.
        _signal_group(self.process.pid, signal.SIGKILL)
        log.info("stopped", extra={"child": self.name, "exit_code": code})


def stop_all(children: list[Child], timeout_s: float) -> None:
    """SIGTERM every child in the given order at once, then give them `timeout_s` in total."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout_s
    for child in children:
        child.reap(deadline)


def program(name: str, env: dict[str, str]) -> Child:
    """A `tumorsearch <name>` child run by this interpreter (so the same venv, whatever PATH says)."""
    return Child(name, [sys.executable, "-m", "services.launcher.cli", name], env)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: expected it within {timeout_s:.0f} s, it did not happen")
