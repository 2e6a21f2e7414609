"""Write a file so that, once the call returns, it survives a kill -9 or a power cut under its final name.

The order is what makes it durable (the MONAI gateway lost data by acknowledging before the fsync):
write to a temporary file in `incoming/`, fsync it, rename it over its final name (atomic: a reader sees
the old file or the new one, never half of one) and fsync the final directory so the rename itself is on
disk. `incoming/` and `studies/` are on one file system (both under TUMORSEARCH_HOME), which rename needs.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path


def write_durably(chunks: tuple[bytes, ...], final_path: Path, incoming: Path) -> None:
    """Store the concatenated `chunks` at `final_path` (replacing an earlier copy: the same instance is
    stored once). Chunks, not one bytes object: the header and the received dataset are never copied."""
    temporary = incoming / f"{uuid.uuid4().hex}.part"  # unique across threads, processes and replicas
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            _write_all(descriptor, chunks)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        _rename_into(temporary, final_path)
    except BaseException:
        _remove_quietly(temporary)
        raise
    fsync_directory(final_path.parent)


def _rename_into(temporary: Path, final_path: Path) -> None:
    """Rename, creating the study folder on its first instance only (a mkdir per instance costs time)."""
    try:
        os.replace(temporary, final_path)
    except FileNotFoundError:
        final_path.parent.mkdir(parents=True, exist_ok=True)
        for folder in (final_path.parent.parent, final_path.parent.parent.parent):  # the new folders' entries
            fsync_directory(folder)
        os.replace(temporary, final_path)


def _write_all(descriptor: int, chunks: tuple[bytes, ...]) -> None:
    views = [memoryview(chunk) for chunk in chunks if chunk]
    while views:
        written = os.writev(descriptor, views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views and written:
            views[0] = views[0][written:]


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
