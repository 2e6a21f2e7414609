"""Walk the stored studies and hand over those the model version in use has not settled yet.

Resumable by design: a study the target version already settled (done, no_tumour, or failed for a reason in
its data) is skipped, so a run stopped half-way is run again and goes on; only the studies it had queued and
the workers had not finished yet (at most `max_queued` plus those in hand) are handed over a second time,
which the idempotent worker makes harmless. The queue is kept short so that studies arriving from the PACS
meanwhile are not stuck behind the whole archive, and the decision for a study is taken only once there is
room for it, so it is never stale. A lost broker or Ctrl-C stops the walk with the tally so far.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from kombu.exceptions import OperationalError
from tqdm import tqdm

from services.reindex.archive import EmptyFolder, Found, StoredStudy, UnreadableFolder, stored_studies, study_folders
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import PROCESS_STUDY, STUDY_QUEUE
from shared.reprocessing import reprocessing_message
from shared.study_status_store import StudyStatusStore

log = logging.getLogger("tumorsearch.reindex")
FINISHED = ("done", "no_tumour")
# A failure the pipeline itself reported carries the model version: it comes from the data (no MR series, a
# missing slice) and the same model would report it again. Timeouts and poison carry none: worth another try.
SETTLED = FINISHED + ("failed",)
# kombu's Redis transport keeps priority 0 in the list named after the queue and priorities 3, 6, 9 in
# "<queue>\x06\x16<p>" lists (kombu.transport.redis: PRIORITY_STEPS, sep): all of them are waiting studies.
QUEUE_LISTS = [STUDY_QUEUE] + [f"{STUDY_QUEUE}\x06\x16{p}" for p in (3, 6, 9)]
BROKER_ERRORS = (redis.RedisError, OperationalError)
SendTask = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class ReindexPlan:
    model_version: str
    everything: bool = False      # hand over current studies too
    dry_run: bool = False
    max_queued: int = 20
    poll_s: float = 1.0
    log_every_s: float = 60.0     # a count in the log this often (runs last as long as the workers take)


@dataclass
class Tally:
    folders: int = 0
    handed_over: int = 0
    current: int = 0
    arriving: int = 0             # the listener still owes them a hand-over: it will send them itself
    empty: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)
    previous_versions: Counter = field(default_factory=Counter)  # what the handed-over studies had before
    stopped: str | None = None    # why the walk ended early

    def count_handover(self, status: StudyStatus | None) -> None:
        self.handed_over += 1
        self.previous_versions[_described(status)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"folders": self.folders, "handed_over": self.handed_over, "current": self.current,
                "arriving": self.arriving, "empty": self.empty, "unreadable": len(self.unreadable),
                "unreadable_folders": self.unreadable, "previous_model_versions": dict(self.previous_versions),
                "stopped": self.stopped}


def is_current(status: StudyStatus | None, model_version: str) -> bool:
    """Settled by this model version: nothing to do. In-flight, timed-out or older studies are not."""
    return status is not None and status.model_version == model_version and status.state in SETTLED


def queued_studies(client: redis.Redis) -> int:
    with client.pipeline(transaction=False) as pipe:
        for name in QUEUE_LISTS:
            pipe.llen(name)
        return sum(pipe.execute())


def wait_for_room(client: redis.Redis, plan: ReindexPlan) -> bool:
    """Block while `max_queued` studies or more wait in the worker's queue, saying so now and then; True if
    it had to wait."""
    since, waited = time.monotonic(), False
    while (waiting := queued_studies(client)) >= plan.max_queued:
        if time.monotonic() - since >= plan.log_every_s:
            log.info("waiting for the workers", extra={"queued": waiting, "max_queued": plan.max_queued})
            since = time.monotonic()
        waited = True
        time.sleep(plan.poll_s)
    return waited


def reindex_archive(layout: StudyLayout, client: redis.Redis, send_task: SendTask, plan: ReindexPlan,
                    progress: bool = True) -> Tally:
    tally, folders = Tally(), study_folders(layout)
    logged = time.monotonic()
    with tqdm(total=len(folders), desc="re-index", unit="study", disable=not progress) as bar:
        try:
            for found in stored_studies(layout, folders):
                tally.folders += 1
                _take(found, layout, client, send_task, plan, tally)
                bar.update(1)
                bar.set_postfix(handed_over=tally.handed_over, current=tally.current)
                if time.monotonic() - logged >= plan.log_every_s:
                    log.info("re-index progress", extra={"of": len(folders), **_counts(tally)})
                    logged = time.monotonic()
        except BROKER_ERRORS as error:
            tally.stopped = f"the broker stopped answering ({type(error).__name__}); run again to go on"
        except KeyboardInterrupt:
            tally.stopped = "interrupted; run again to go on"
    return tally


def _take(found: Found, layout: StudyLayout, client: redis.Redis,
          send_task: SendTask, plan: ReindexPlan, tally: Tally) -> None:
    if isinstance(found, EmptyFolder):
        tally.empty += 1
    elif isinstance(found, UnreadableFolder):
        tally.unreadable.append({"location": found.location, "reason": found.reason})
    elif layout.handover_owed(found.location.rsplit("/", 1)[1]):
        tally.arriving += 1
    else:
        _consider(found, layout, client, send_task, plan, tally)


def _consider(study: StoredStudy, layout: StudyLayout, client: redis.Redis, send_task: SendTask,
              plan: ReindexPlan, tally: Tally) -> None:
    statuses = StudyStatusStore(client)
    status = statuses.get(study.study_uid)
    if not plan.everything and is_current(status, plan.model_version):
        tally.current += 1
        return
    if plan.dry_run:
        tally.count_handover(status)
        return
    if wait_for_room(client, plan):
        status = statuses.get(study.study_uid)  # again: the workers may have settled it while we waited
    if not plan.everything and is_current(status, plan.model_version):
        tally.current += 1
    elif (message := reprocessing_message(layout, client, study.study_uid, status)) is None:
        tally.empty += 1  # its instances were deleted since the folder was read
    else:
        send_task(PROCESS_STUDY, {"message": message.model_dump()})
        tally.count_handover(status)


def _counts(tally: Tally) -> dict[str, int]:
    return {k: v for k, v in tally.as_dict().items() if isinstance(v, int)}


def _described(status: StudyStatus | None) -> str:
    if status is None:
        return "(no status)"
    if status.state in FINISHED:
        return status.model_version or "(unknown version)"
    return f"({status.state})"
