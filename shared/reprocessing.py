"""Hand a study already stored under TUMORSEARCH_HOME to the worker again ("re-index"), e.g. after a new
checkpoint: the same StudyReady message the listener sends for a new study, with the next hand-over number.
One place for it, since two programs do it: the gateway's admin endpoint (one study) and `tumorsearch
reindex` (the whole archive). The worker is idempotent, so handing a study over twice is harmless."""

from __future__ import annotations

import redis

from shared.contracts.handovers import next_handover
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import StudyReady


def stored_instance_count(layout: StudyLayout, study_uid: str) -> int:
    folder = layout.study_dir(study_uid)
    return sum(1 for _ in folder.glob("*.dcm")) if folder.is_dir() else 0


def reprocessing_message(layout: StudyLayout, client: redis.Redis, study_uid: str,
                         previous: StudyStatus | None) -> StudyReady | None:
    """The hand-over that makes the worker process the stored study again, numbered by the counter every
    sender shares (shared/contracts/handovers.py); None when nothing is stored. `previous`: the study's
    last status, as the caller read it (StudyStatusStore), or None."""
    count = stored_instance_count(layout, study_uid)
    if count == 0:
        return None
    handover = next_handover(client, study_uid, at_least=(previous.handover + 1) if previous is not None else 1)
    return StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid),
                      instance_count=count, handover=handover)
