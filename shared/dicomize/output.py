"""What both modes share: one writer per output folder, the mapping side file, atomic small files, the summary.

The mapping file (`OUT/mapping.csv`) links generated UIDs to source ids; it never goes into the DICOM. It is
appended one row per study as the run goes (a crash loses at most rows whose study folders are complete and can
be read back), and rewritten whole, atomically, at the start and the end of a run.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom

MAPPING = "mapping.csv"
LOCK = ".dicomize.lock"
PARTIAL_PREFIX = ".partial-"  # a study folder while it is written; renamed into place when complete


class DicomizeError(Exception):
    """A refusal the user can act on (missing data, wrong grid, a foreign output folder); exit status 2."""


@dataclass(frozen=True)
class Summary:
    written: int
    skipped: int
    seconds: float
    out: Path

    def line(self, one: str = "study", many: str = "studies") -> str:
        return (f"tumorsearch dicomize: {self.written} {one if self.written == 1 else many} written, "
                f"{self.skipped} skipped (already there), {self.seconds:.2f} s -> {self.out}")


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold OUT for this run (two runs writing one folder would append each other's rows), and remove the
    partial study folders an interrupted run left: no one else writes them while the lock is held."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DicomizeError(f"{out}: expected no other `tumorsearch dicomize` writing there, found one "
                                "running (it holds the lock file); wait for it or choose another --out") from None
        for partial in out.glob(f"{PARTIAL_PREFIX}*"):
            shutil.rmtree(partial, ignore_errors=True)
        yield


class MappingFile:
    """OUT/mapping.csv with fixed columns, keyed by one of them."""

    def __init__(self, out: Path, columns: Sequence[str], key: str) -> None:
        self.path, self.columns, self.key = out / MAPPING, tuple(columns), key
        self.rows: dict[str, dict[str, str]] = {}

    def load(self) -> MappingFile:
        """Read the rows already there and rewrite the file clean. Rows are appended whole, newline last, so a
        last line without its newline is one a crash tore, and is dropped."""
        if self.path.exists():
            with self.path.open(newline="") as handle:
                text = handle.read()
            if not text.endswith("\n"):
                text = text[:text.rfind("\n") + 1]
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if reader.fieldnames is not None and tuple(reader.fieldnames) != self.columns:
                raise DicomizeError(f"{self.path}: expected the columns {','.join(self.columns)}, found "
                                    f"{','.join(reader.fieldnames)}; this --out holds another kind of output")
            for row in reader:
                if all(row.get(c) is not None for c in self.columns) and None not in row:
                    self.rows[row[self.key]] = {c: row[c] for c in self.columns}
        self.rewrite()
        return self

    def append(self, row: dict[str, object]) -> None:
        text = {c: str(row[c]) for c in self.columns}
        self.rows[text[self.key]] = text
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns, lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow(text)

    def rewrite(self, sort_key=None) -> None:  # noqa: ANN001 - a key function on rows
        rows = sorted(self.rows.values(), key=sort_key) if sort_key else list(self.rows.values())
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, self.path)


def write_json(path: Path, value: object) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(temporary, path)


def fresh_partial(out: Path, name: str) -> Path:
    """An empty folder to write one study into before it is renamed to OUT/name (a crash leaves only this)."""
    partial = out / f"{PARTIAL_PREFIX}{name}"
    shutil.rmtree(partial, ignore_errors=True)
    return partial


def header_uids(path: Path) -> dict[str, str]:
    """The identifiers a complete study folder's first file carries, to rebuild a mapping row lost in a crash."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {"patient_id": str(ds.PatientID), "study_instance_uid": str(ds.StudyInstanceUID),
            "series_instance_uid": str(ds.SeriesInstanceUID), "sop_instance_uid": str(ds.SOPInstanceUID)}
