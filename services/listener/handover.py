"""Hand quiet studies to the worker: a Celery task sent by name, identifiers and location only.

A loop in each listener replica (a thread): take the studies Redis says are quiet (study_state.py), claim
each one's outbox marker, count its instance files, send `StudyReady`, drop the marker. When Redis was
unreachable, or at start, it first replays the outbox into Redis, so every study that was acknowledged
is handed over once Redis answers, after a fresh quiet period. Design and failure cases: docs/listener.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from services.listener.metrics import ListenerMetrics
from services.listener.outbox import Outbox
from services.listener.study_state import StudyState
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import StudyReady
from shared.contracts.uids import uid_key

log = logging.getLogger("tumorsearch.listener")

SWEEP_EVERY_S = 60.0  # also replay markers whose Redis entry vanished (a Redis restart without persistence)
SENDING_STALE_S = 60.0  # a hand-over marker this old belongs to a replica that died while sending


class Handover:
    def __init__(self, state: StudyState, outbox: Outbox, layout: StudyLayout,
                 send: Callable[[StudyReady], None], metrics: ListenerMetrics) -> None:
        self.state = state
        self.outbox = outbox
        self.layout = layout
        self.send = send
        self.metrics = metrics
        self._next_sweep = 0.0

    def run(self, stopping: threading.Event, poll_s: float) -> None:
        while not stopping.wait(poll_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure; the outbox keeps the work
                log.exception("hand-over loop failed; retrying")

    def tick(self) -> None:
        if not self.state.healthy.is_set():
            if not self.state.reachable():
                return
            self.state.healthy.set()
            self.replay()
        elif time.monotonic() >= self._next_sweep:
            self.replay()
        for study_uid, number in self.state.claim_due():
            self.hand_over(study_uid, number)

    def replay(self) -> int:
        owed = self.outbox.owed(sending_older_than_s=SENDING_STALE_S)
        scheduled = sum(self.state.schedule_if_absent(uid) for uid in owed)
        self._next_sweep = time.monotonic() + SWEEP_EVERY_S
        if scheduled:
            log.info("outbox replayed", extra={"studies": scheduled})
        return scheduled

    def hand_over(self, study_uid: str, number: int) -> bool:
        claim = self.outbox.claim(study_uid)
        if claim is None:
            # Another hand-over took the marker after the last instance was stored: it counted it.
            return False
        count = count_instances(self.layout.study_dir(study_uid))
        if count == 0:
            self.outbox.done(claim)
            return False
        message = StudyReady(study_instance_uid=study_uid, location=self.layout.study_location(study_uid),
                             instance_count=count, handover=number)
        try:
            self.send(message)
        except Exception as error:  # noqa: BLE001 - any broker failure: keep the study owed
            self.outbox.release(claim)
            self.metrics.handover_failures.inc()
            self.state.lost(error)
            return False
        self.outbox.done(claim)
        self.metrics.studies_handed_over.inc()
        log.info("study handed over", extra={"study_key": uid_key(study_uid, "study"), "instances": count,
                                             "handover": number})
        return True


def count_instances(study_dir: Path) -> int:
    try:
        with os.scandir(study_dir) as entries:
            return sum(1 for entry in entries if entry.name.endswith(".dcm"))
    except FileNotFoundError:
        return 0
