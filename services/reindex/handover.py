"""Walk the stored studies and hand over those the model version in use has not processed yet.

Resumable by design: a study the target version already settled (done, no_tumour, or failed for a reason in
its data) is skipped, so a run stopped half-way is simply run again. The queue is kept short (`max_queued` studies waiting) so that
studies arriving from the PACS meanwhile are not stuck behind the whole archive.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from tqdm import tqdm

from services.reindex.archive import StoredStudy, UnreadableFolder, stored_studies, study_folders
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import PROCESS_STUDY, STUDY_QUEUE
from shared.reprocessing import reprocessing_message
from shared.study_status_store import StudyStatusStore

FINISHED = ("done", "no_tumour")
# A failure the pipeline itself reported carries the model version: it comes from the data (no MR series, a
# missing slice) and the same model would report it again. Timeouts and poison carry none: worth another try.
SETTLED = FINISHED + ("failed",)
SendTask = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class ReindexPlan:
    model_version: str
    everything: bool = False      # hand over current studies too
    dry_run: bool = False
    max_queued: int = 20
    poll_s: float = 1.0


@dataclass
class Tally:
    folders: int = 0
    handed_over: int = 0
    current: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)
    previous_versions: Counter = field(default_factory=Counter)  # what the handed-over studies had before

    def count_handover(self, status: StudyStatus | None) -> None:
        self.handed_over += 1
        self.previous_versions[_described(status)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"folders": self.folders, "handed_over": self.handed_over, "current": self.current,
                "unreadable": len(self.unreadable), "unreadable_folders": self.unreadable,
                "previous_model_versions": dict(self.previous_versions)}


def is_current(status: StudyStatus | None, model_version: str) -> bool:
    """Settled by this model version: nothing to do. In-flight, timed-out or older studies are not."""
    return status is not None and status.model_version == model_version and status.state in SETTLED


def wait_for_room(client: redis.Redis, max_queued: int, poll_s: float) -> None:
    """Block while `max_queued` studies or more wait in the worker's queue (Celery's Redis list)."""
    while client.llen(STUDY_QUEUE) >= max_queued:
        time.sleep(poll_s)


def reindex_archive(layout: StudyLayout, client: redis.Redis, send_task: SendTask, plan: ReindexPlan,
                    progress: bool = True) -> Tally:
    statuses, tally = StudyStatusStore(client), Tally()
    folders = study_folders(layout)
    with tqdm(total=len(folders), desc="re-index", unit="study", disable=not progress) as bar:
        for found in stored_studies(layout, folders):
            tally.folders += 1
            if isinstance(found, UnreadableFolder):
                tally.unreadable.append({"location": found.location, "reason": found.reason})
            else:
                _consider(found, layout, statuses, client, send_task, plan, tally)
            bar.update(1)
            bar.set_postfix(handed_over=tally.handed_over, current=tally.current, unreadable=len(tally.unreadable))
    return tally


def _consider(study: StoredStudy, layout: StudyLayout, statuses: StudyStatusStore, client: redis.Redis,
              send_task: SendTask, plan: ReindexPlan, tally: Tally) -> None:
    status = statuses.get(study.study_uid)
    if not plan.everything and is_current(status, plan.model_version):
        tally.current += 1
        return
    if plan.dry_run:
        tally.count_handover(status)
        return
    message = reprocessing_message(layout, statuses, study.study_uid)
    if message is None:  # emptied since it was listed (a retention clean-up): nothing left to process
        tally.unreadable.append({"location": study.location, "reason": "its instances were removed meanwhile"})
        return
    wait_for_room(client, plan.max_queued, plan.poll_s)
    send_task(PROCESS_STUDY, {"message": message.model_dump()})
    tally.count_handover(status)


def _described(status: StudyStatus | None) -> str:
    if status is None:
        return "(no status)"
    if status.state in FINISHED:
        return status.model_version or "(unknown version)"
    return f"({status.state})"
