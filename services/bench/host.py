"""The machine a benchmark ran on, written into every report: figures mean nothing without it. Also the
other programs busy on the CPU when a bench starts, since its figures share the cores with them."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

import psutil


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict:
    """CPU model, cores, memory and Python; each bench adds what else its figures depend on."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version()}


def busy_processes(seconds: float = 0.5, threshold: float = 20.0) -> list[dict]:
    """Other processes above `threshold` % of a core over `seconds`, busiest first."""
    processes = list(psutil.process_iter(["pid", "name", "cmdline"]))
    for process in processes:
        try:
            process.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(seconds)
    busy = []
    for process in processes:
        try:
            percent = process.cpu_percent(None)
        except psutil.Error:
            continue
        if percent >= threshold and process.pid != os.getpid():
            words = [Path(w).name for w in (process.info["cmdline"] or [process.info["name"]])[:3]]
            busy.append({"pid": process.pid, "cpu_percent": round(percent), "command": " ".join(words)[:80]})
    return sorted(busy, key=lambda b: -b["cpu_percent"])
