"""The stored instances of one study, read header-only and grouped by series.

Only headers are read here (stop_before_pixels): choosing what to process and checking a series'
geometry must not decode anything, so an oversized or hostile file is refused before its pixels are
touched (volume.py). Objects that are not MR images are skipped with a reason, never an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

log = logging.getLogger("tumorsearch.worker")

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
LEGACY_ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.4"
MR_CLASSES = {MR_IMAGE: "MR Image", ENHANCED_MR_IMAGE: "Enhanced MR Image",
              LEGACY_ENHANCED_MR_IMAGE: "Legacy Converted Enhanced MR Image"}


@dataclass(frozen=True)
class Instance:
    path: Path
    header: pydicom.Dataset  # without pixel data

    @property
    def frames(self) -> int:
        return int(getattr(self.header, "NumberOfFrames", 1) or 1)


@dataclass
class Series:
    uid: str
    instances: list[Instance] = field(default_factory=list)

    @property
    def first(self) -> pydicom.Dataset:
        return self.instances[0].header

    @property
    def description(self) -> str:
        return str(getattr(self.first, "SeriesDescription", "") or "")

    @property
    def frames(self) -> int:
        return sum(i.frames for i in self.instances)


@dataclass(frozen=True)
class Skipped:
    """Something in the study that is not processed, and why (no identifiers: this is logged)."""
    count: int
    reason: str


@dataclass(frozen=True)
class StudyFiles:
    study_uid: str
    series: list[Series]
    skipped: list[Skipped]


def read_study(folder: Path) -> StudyFiles:
    """Every `.dcm` under the study folder, MR image series by series; the rest counted as skipped."""
    series: dict[str, Series] = {}
    reasons: dict[str, int] = {}
    study_uid = ""
    for path in sorted(folder.glob("*.dcm")):
        header, reason = _read_header(path)
        if header is None:
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        study_uid = study_uid or str(header.StudyInstanceUID)
        series.setdefault(str(header.SeriesInstanceUID), Series(str(header.SeriesInstanceUID))).instances.append(
            Instance(path, header))
    skipped = [Skipped(n, r) for r, n in sorted(reasons.items())]
    return StudyFiles(study_uid, list(series.values()), skipped)


def _read_header(path: Path) -> tuple[pydicom.Dataset | None, str]:
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        log.warning("unreadable instance skipped", extra={"error": type(error).__name__})
        return None, "unreadable DICOM file"
    sop_class = str(getattr(header, "SOPClassUID", ""))
    if sop_class not in MR_CLASSES:
        return None, f"not an MR image (SOP class {sop_class or 'missing'})"
    if "SeriesInstanceUID" not in header or "StudyInstanceUID" not in header:
        return None, "MR image without study or series UID"
    return header, ""
