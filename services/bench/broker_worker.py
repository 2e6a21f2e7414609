"""A real `celery worker` subprocess for the broker bench, in its own process group so it can be SIGKILLed whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.bench.broker_tasks import QUEUE


class BenchWorker:
    """`celery worker` with the prefork pool and one child, as the real worker runs: the child is what the
    OOM killer takes, the main process is what supervises it."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self.environment = environment
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> BenchWorker:
        command = [sys.executable, "-m", "celery", "-A", "services.bench.broker_tasks", "worker",
                   "--pool", "prefork", "--concurrency", "1", "-Q", QUEUE, "--loglevel", "WARNING",
                   # One worker: no cluster chatter that would add broker traffic to the figures.
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env={**os.environ, **self.environment}, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill_group(self) -> None:
        """SIGKILL the main process and its pool children at once: a machine or pod lost mid-task."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Warm shutdown (SIGTERM); if a task is still running past timeout_s, kill the group."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
            self.process = None
        except subprocess.TimeoutExpired:
            self.kill_group()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_lines(path: Path, count: int, timeout_s: float, worker: BenchWorker | None = None,
                   progress=None) -> float | None:
    """Seconds until `path` holds `count` lines, or None after timeout_s. Fails fast if the worker died."""
    start = time.monotonic()
    seen = 0
    while time.monotonic() - start < timeout_s:
        now = count_lines(path)
        if progress is not None and now > seen:
            progress.update(now - seen)
        seen = now
        if now >= count:
            return time.monotonic() - start
        if worker is not None and worker.process is not None and worker.process.poll() is not None:
            raise RuntimeError(f"expected the celery worker to keep running, it exited with code "
                               f"{worker.process.returncode}:\n{worker.log_tail()}")
        time.sleep(0.01)
    return None
