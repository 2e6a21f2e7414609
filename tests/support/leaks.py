"""Find (and end) processes a test run left behind, so a leak fails the run instead of haunting the next one."""

from __future__ import annotations

import psutil

from support.processes import group_alive, started_processes, stop_pid

# Helpers the standard library keeps alive until interpreter exit on purpose; not leaks.
_EXPECTED_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def leftover_processes() -> list[str]:
    """Describe every process still running that a test started: registered servers and stray children."""
    found: dict[int, str] = {}
    for proc in started_processes():
        if proc.alive():
            found[proc.pid] = f"pid {proc.pid} ({proc.name}, log {proc.log_path})"
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if child.pid not in found and not any(helper in cmdline for helper in _EXPECTED_HELPERS):
            found[child.pid] = f"pid {child.pid} ({cmdline[:200]})"
    return list(found.values())


def end_leftovers() -> None:
    """Stop registered servers by their PID (whole group); SIGKILL stray children by PID."""
    for proc in started_processes():
        if proc.alive():
            proc.stop(grace=2.0)
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
            child.wait(timeout=5)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            continue
    for proc in started_processes():
        if group_alive(proc.pid):
            stop_pid(proc.pid, grace=0.5)
