"""Helpers of `bench worker`: put a study where the listener would, hand it over, time it to searchable."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pydicom
import redis
from celery import Celery

from shared.broker.celery_config import celery_config
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import PROCESS_STUDY, StudyReady
from shared.contracts.vectors import collection_name
from shared.study_status_store import StudyStatusStore
from shared.vectorstore.base import Filter, Match
from shared.vectorstore.qdrant_backend import QdrantStore

FINAL = ("done", "no_tumour", "failed")


def place_study(home: Path, files: list[Path]) -> str:
    layout, study_uid = StudyLayout(home), ""
    for path in files:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        study_uid = str(header.StudyInstanceUID)
        target = layout.instance_path(study_uid, str(header.SOPInstanceUID))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return study_uid


def send_study_ready(broker_url: str, home: Path, study_uid: str, handover: int) -> None:
    """Hand a placed study to the worker by task name, as the listener does."""
    layout = StudyLayout(home)
    app = Celery("tumorsearch-bench", set_as_current=False)
    app.conf.update(celery_config(broker_url, 3600))
    message = StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid),
                         instance_count=len(list(layout.study_dir(study_uid).glob("*.dcm"))), handover=handover)
    app.send_task(PROCESS_STUDY, kwargs={"message": message.model_dump()})


def hand_over_and_wait(broker_url: str, home: Path, study_uid: str, handover: int, vector_url: str,
                       timeout_s: float = 600.0) -> dict:
    """Seconds from sending the hand-over to the study's points answering a search, and the worker's
    own seconds per stage (from the study status)."""
    statuses = StudyStatusStore(redis.Redis.from_url(broker_url))
    started = time.perf_counter()
    send_study_ready(broker_url, home, study_uid, handover)
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        status = statuses.get(study_uid)
        if status is not None and status.handover == handover and status.state in FINAL:
            break
        time.sleep(0.05)
    else:
        raise TimeoutError(f"expected the study processed within {timeout_s} s; found {statuses.get(study_uid)}")
    found = _searchable(vector_url, status, study_uid)
    return {"searchable_s": round(time.perf_counter() - started, 3), "state": status.state,
            "tumours": status.tumours, "found_by_search": found, "stages_s": status.seconds}


def _searchable(vector_url: str, status, study_uid: str) -> bool:  # noqa: ANN001 - a StudyStatus
    if not status.point_ids:
        return False
    store = QdrantStore.server(vector_url)
    collection = collection_name(status.model_version)
    point = store.retrieve(collection, status.point_ids[:1])[0]
    hits = store.search(collection, point.vector, 1, Filter(must=(Match("study_instance_uid", study_uid),)))
    return bool(hits) and hits[0].id == point.id
