"""The studies stored under TUMORSEARCH_HOME, read back from the files themselves.

Folders are named by a digest of the study UID (shared/contracts/storage.py), so the UID comes from the
StudyInstanceUID of a stored instance, and is trusted only when its digest names the folder it was found
in: a file copied into the wrong folder must not make the worker process another study's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom

from shared.contracts.storage import StudyLayout
from shared.contracts.uids import uid_key, validate_uid

# Files tried per folder before it is reported unreadable: one damaged instance must not hide a study.
FILES_TRIED = 3


@dataclass(frozen=True)
class StoredStudy:
    study_uid: str
    location: str  # studies/<xx>/<key>: safe to log, it names no patient


@dataclass(frozen=True)
class UnreadableFolder:
    location: str
    reason: str


@dataclass(frozen=True)
class EmptyFolder:
    location: str


def study_folders(layout: StudyLayout) -> list[Path]:
    """Every study folder, in a stable order, so an interrupted run resumes the same way."""
    if not layout.studies.is_dir():
        return []
    return sorted(folder for fan in layout.studies.iterdir() if fan.is_dir()
                  for folder in fan.iterdir() if folder.is_dir())


Found = StoredStudy | UnreadableFolder | EmptyFolder


def read_folder(layout: StudyLayout, folder: Path) -> Found:
    location = folder.relative_to(layout.home).as_posix()
    if not _is_study_key(folder):
        return UnreadableFolder(location, "expected a folder named by a study key (32 hex digits), found another name")
    files = sorted(folder.glob("*.dcm"))
    if not files:
        return EmptyFolder(location)
    reasons = []
    for path in files[:FILES_TRIED]:
        try:
            study_uid = _study_uid(path)
        except Exception as error:  # noqa: BLE001 - a damaged file raises anything from pydicom's parser
            reasons.append(f"{type(error).__name__}")
            continue
        if uid_key(study_uid, "study") != folder.name:
            return UnreadableFolder(location, "the StudyInstanceUID in its files is not the one the folder is named by")
        return StoredStudy(study_uid, location)
    return UnreadableFolder(location, f"no StudyInstanceUID readable in the first {len(reasons)} files "
                                      f"({', '.join(sorted(set(reasons)))})")


def stored_studies(layout: StudyLayout, folders: list[Path]) -> Iterator[Found]:
    for folder in folders:
        yield read_folder(layout, folder)


def _is_study_key(folder: Path) -> bool:
    name = folder.name
    return len(name) == 32 and name.startswith(folder.parent.name) and all(c in "0123456789abcdef" for c in name)


def _study_uid(path: Path) -> str:
    header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    value = header.get("StudyInstanceUID")
    if value is None:
        raise ValueError("no StudyInstanceUID")
    return validate_uid(str(value), "StudyInstanceUID")
