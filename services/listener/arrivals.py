"""Arrivals waiting to push their study's quiet time forward in Redis, off the acknowledgement path.

Touching Redis on every C-STORE costs a round trip (~0.5-1 ms) inside the time the sender waits for its
response, for nothing durability needs: the outbox marker is on disk before success is answered. The
storage handler only notes the study here; this thread touches Redis for every study that had an
arrival since its last pass, every `interval_s` (100 ms). The quiet period therefore starts at most one
interval after the last instance: a study is never handed over sooner than configured after it.
"""

from __future__ import annotations

import threading

from services.listener.study_state import StudyState


class Arrivals:
    def __init__(self, state: StudyState) -> None:
        self.state = state
        self._studies: set[str] = set()
        self._lock = threading.Lock()

    def note(self, study_uid: str) -> None:
        with self._lock:
            self._studies.add(study_uid)

    def flush(self) -> int:
        """Touch every noted study once; returns how many. A failed touch is left to the outbox replay."""
        with self._lock:
            studies, self._studies = self._studies, set()
        for study_uid in studies:
            self.state.touch(study_uid)
        return len(studies)

    def run(self, stopping: threading.Event, interval_s: float = 0.1) -> None:
        while not stopping.wait(interval_s):
            self.flush()
        self.flush()
