"""Write a file so that, once the call returns, it survives a kill -9 or a power cut under its final name.

The order is what makes it durable (the MONAI gateway lost data by acknowledging before the fsync):
write to a temporary file in `incoming/`, fsync it, rename it over its final name (atomic: a reader sees
the old file or the new one, never half of one) and fsync the final directory so the rename itself is on
disk. `incoming/` and `studies/` are on one file system (both under TUMORSEARCH_HOME), which rename needs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def write_durably(data: bytes, final_path: Path, incoming: Path) -> None:
    """Store `data` at `final_path` (replacing an earlier copy: the same instance is stored once)."""
    final_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=incoming, suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final_path)
    except BaseException:
        _remove_quietly(Path(temporary))
        raise
    fsync_directory(final_path.parent)


def fsync_directory(folder: Path) -> None:
    """Make the entries of `folder` (a rename, a new link) durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def free_megabytes(folder: Path) -> float:
    return shutil.disk_usage(folder).free / (1024 * 1024)


def clean_incoming(incoming: Path, older_than_s: float = 600.0) -> int:
    """Remove temporary files a killed listener left behind (never acknowledged); returns how many.

    Only old ones: a replica sharing the folder may be writing a fresh one right now.
    """
    removed = 0
    cutoff = time.time() - older_than_s
    for leftover in incoming.glob("*.part"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
