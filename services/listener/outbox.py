"""The on-disk outbox: which studies still owe the worker a hand-over, kept where a crash cannot lose it.

Redis decides *when* a study is handed over (quiet period shared by all replicas), but Redis may be down
or lose its memory, and the listener may be killed right after answering success. So before a C-STORE is
answered, the study gets a marker here, fsynced:

    outbox/<study key>.pending            content: the study UID (the hand-over message needs it)
    outbox/<study key>.<token>.sending    a hand-over in progress (renamed from .pending)

A hand-over first renames `.pending` to `.sending` (atomic; among replicas sharing the folder exactly one
rename succeeds), then counts the study's files, sends the task, then deletes `.sending`. An instance
stored after the rename makes a new `.pending`, so it gets a hand-over of its own; an instance stored
before it is already in the folder the hand-over counts. Left-over markers (Redis was down, the process
was killed mid-hand-over) are replayed at start and on reconnect: at least once, and the worker is
idempotent. File names are keys (digests), never UIDs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.listener.durable_write import fsync_directory
from shared.contracts.storage import OUTBOX_PENDING as PENDING
from shared.contracts.storage import OUTBOX_SENDING as SENDING
from shared.contracts.uids import uid_key, validate_uid


@dataclass(frozen=True)
class Claim:
    study_uid: str
    path: Path


class Outbox:
    def __init__(self, folder: Path, incoming: Path) -> None:
        self.folder = folder
        self.incoming = incoming
        self._creating = threading.Lock()

    def _pending(self, study_uid: str) -> Path:
        return self.folder / f"{uid_key(study_uid, 'study')}{PENDING}"

    def mark_pending(self, study_uid: str) -> None:
        """Durably record that `study_uid` owes a hand-over; cheap when it already does."""
        pending = self._pending(study_uid)
        if pending.exists():
            # Its creator fsynced it before linking it; a concurrent rename to .sending is fine (see above).
            return
        with self._creating:  # threads of this process: the second one waits for the first one's fsync
            if pending.exists():
                return
            descriptor, temporary = tempfile.mkstemp(dir=self.incoming, suffix=".marker")
            try:
                os.write(descriptor, study_uid.encode("ascii"))
                os.fsync(descriptor)
                os.close(descriptor)
                try:
                    os.link(temporary, pending)  # link, not rename: never replaces a replica's marker
                except FileExistsError:
                    pass
            finally:
                os.unlink(temporary)
            fsync_directory(self.folder)

    def claim(self, study_uid: str) -> Claim | None:
        """Take the study's marker for a hand-over; None when there is none (another replica took it)."""
        target = self.folder / f"{uid_key(study_uid, 'study')}.{uuid.uuid4().hex[:12]}{SENDING}"
        try:
            os.rename(self._pending(study_uid), target)
        except FileNotFoundError:
            return None
        os.utime(target)  # its age now says how long this hand-over has run (see `owed`)
        return Claim(study_uid, target)

    def done(self, claim: Claim) -> None:
        try:
            claim.path.unlink()
        except FileNotFoundError:
            pass

    def release(self, claim: Claim) -> None:
        """A hand-over failed: the study owes one again (merged with a newer marker if there is one)."""
        try:
            os.link(claim.path, self._pending(claim.study_uid))
        except FileExistsError:
            pass
        except FileNotFoundError:
            return
        self.done(claim)

    def owed(self, sending_older_than_s: float) -> list[str]:
        """Study UIDs with a marker: every `.pending`, and `.sending` left by a hand-over that died
        (older than the given age, so a replica's hand-over in progress is not taken from it)."""
        cutoff = time.time() - sending_older_than_s
        studies: set[str] = set()
        for path in self.folder.iterdir():
            uid = self._read_uid(path)
            if uid is None:
                continue
            if path.name.endswith(SENDING):
                if not self._stale(path, cutoff):
                    continue
                self.release(Claim(uid, path))
            studies.add(uid)
        return sorted(studies)

    @staticmethod
    def _stale(path: Path, cutoff: float) -> bool:
        try:
            return path.stat().st_mtime < cutoff
        except FileNotFoundError:
            return False

    @staticmethod
    def _read_uid(path: Path) -> str | None:
        if not path.name.endswith((PENDING, SENDING)):
            return None
        try:
            uid = validate_uid(path.read_bytes()[:64].decode("ascii"), "outbox marker")
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return uid if path.name.startswith(uid_key(uid, "study")) else None
