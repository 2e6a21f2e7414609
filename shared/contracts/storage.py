"""Where things live under TUMORSEARCH_HOME. Every program that touches files goes through StudyLayout.

    <home>/studies/<k[:2]>/<study key>/<instance key>.dcm   instances as received (encoded dataset)
    <home>/incoming/                                      temporary files, renamed into studies/
    <home>/outbox/<study key>.pending | .<token>.sending  hand-overs the listener still owes (its outbox.py)
    <home>/thumbnails/<k[:2]>/<point id>.png              tumour thumbnails the worker writes
    <home>/derived/<k[:2]>/<study key>/<series key>.seg.dcm  DICOM SEG of the tumours the worker writes
    <home>/vectors/                                       the embedded vector store (one machine)
    <home>/broker/                                        the embedded broker's append-only file

Keys are digests of validated UIDs (shared.contracts.uids), never the UIDs themselves. The fan-out on
the first two key characters keeps directories small on archives of millions of instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared.contracts.uids import uid_key


# The listener's outbox markers: a study with one is still arriving or being handed over by the listener.
OUTBOX_PENDING, OUTBOX_SENDING = ".pending", ".sending"


class UnsafePath(ValueError):
    """A relative storage location that would leave the storage root."""


@dataclass(frozen=True)
class StudyLayout:
    home: Path

    @property
    def studies(self) -> Path:
        return self.home / "studies"

    @property
    def incoming(self) -> Path:
        return self.home / "incoming"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def thumbnails(self) -> Path:
        return self.home / "thumbnails"

    @property
    def derived(self) -> Path:
        return self.home / "derived"

    def segmentation_path(self, study_uid: str, series_uid: str) -> Path:
        key = uid_key(study_uid, "study")
        return self.derived / key[:2] / key / f"{uid_key(series_uid, 'series')}.seg.dcm"

    @property
    def vectors(self) -> Path:
        return self.home / "vectors"

    @property
    def broker(self) -> Path:
        return self.home / "broker"

    def study_location(self, study_uid: str) -> str:
        """The study's folder relative to `home`, as carried in task messages (POSIX separators)."""
        key = uid_key(study_uid, "study")
        return f"studies/{key[:2]}/{key}"

    def handover_owed(self, study_key: str) -> bool:
        """True while the listener owes the study in folder `study_key` a hand-over (instances arriving)."""
        return (self.outbox / f"{study_key}{OUTBOX_PENDING}").exists() or any(
            self.outbox.glob(f"{study_key}.*{OUTBOX_SENDING}"))

    def study_dir(self, study_uid: str) -> Path:
        return self.home / self.study_location(study_uid)

    def instance_path(self, study_uid: str, sop_instance_uid: str) -> Path:
        return self.study_dir(study_uid) / f"{uid_key(sop_instance_uid, 'instance')}.dcm"

    def thumbnail_path(self, point_id: str) -> Path:
        name = point_id.replace("-", "")
        if not (len(name) == 32 and all(c in "0123456789abcdef" for c in name)):
            raise UnsafePath(f"thumbnail: expected a UUID point id, found {len(point_id)} characters")
        return self.thumbnails / name[:2] / f"{name}.png"

    def resolve(self, location: str) -> Path:
        """The absolute path of a location from a task message, refusing anything outside `studies/`."""
        relative = PurePosixPath(location)
        parts = relative.parts
        if relative.is_absolute() or ".." in parts or len(parts) != 3 or parts[0] != "studies":
            raise UnsafePath("study location: expected studies/<xx>/<32 hex>, found another shape")
        if not (len(parts[2]) == 32 and parts[2].startswith(parts[1]) and _is_hex(parts[2])):
            raise UnsafePath("study location: expected studies/<xx>/<32 hex>, found another shape")
        return self.home.joinpath(*parts)

    def ensure(self) -> None:
        for folder in (self.studies, self.incoming, self.outbox, self.thumbnails, self.derived, self.vectors,
                       self.broker):
            folder.mkdir(parents=True, exist_ok=True)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
