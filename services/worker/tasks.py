"""The worker's Celery task `tumorsearch.worker.process_study` (shared.contracts.tasks.PROCESS_STUDY).

Delivery (docs/broker.md): acks late and reject-on-worker-lost, so a worker killed mid-study leaves the
task to be delivered again; the delivery cap turns a study that kills the worker every time into a
"failed" status instead of a loop. Transient failures (broker, vector store, the SEG destination) are
retried with exponential backoff; data problems fail the study at once with their reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import redis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError
from qdrant_client.http.exceptions import ResponseHandlingException

from services.worker.errors import StudyError
from services.worker.pipeline import PipelineConfig, process_study
from services.worker.region import embed_region
from services.worker.runtime import load_runtime
from shared.broker.delivery import DeliveryCapExceeded, enforce_delivery_cap, forget_deliveries
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import EMBED_REGION, PROCESS_STUDY, EmbedRegion, StudyReady
from shared.study_status_store import StudyStatusStore
from shared.vectorstore.base import VectorStore

log = logging.getLogger("tumorsearch.worker")
REPLY_TTL_S = 120  # an answer nobody waits for any more expires
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, httpx.TransportError, ResponseHandlingException,
             ConnectionError, TimeoutError)


@dataclass(frozen=True)
class WorkerContext:
    pipeline: PipelineConfig
    checkpoint: Path
    device: str
    precision: str
    redis: redis.Redis
    store: VectorStore
    max_deliveries: int
    delivery_ttl_s: int
    soft_time_limit_s: int


def register_tasks(app: Celery, context: WorkerContext) -> None:
    statuses = StudyStatusStore(context.redis)

    @app.task(name=PROCESS_STUDY, bind=True, autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=120,
              retry_jitter=True, max_retries=8, soft_time_limit=context.soft_time_limit_s,
              time_limit=context.soft_time_limit_s + 30)
    def process_study_task(self, message: dict) -> dict:  # noqa: ANN001 - Celery's bound task
        try:
            ready = StudyReady.model_validate(message)
        except ValidationError as error:
            log.error("malformed study message dropped", extra={"errors": error.error_count()})
            return {"state": "rejected"}
        status = run_once(self.request.id, ready, context, statuses)
        statuses.put(status)
        forget_deliveries(context.redis, self.request.id)
        log.info("study processed", extra={"state": status.state, "tumours": status.tumours,
                                           "handover": ready.handover})
        return {"state": status.state, "tumours": status.tumours}

    @app.task(name=EMBED_REGION, soft_time_limit=60, time_limit=90)
    def embed_region_task(message: dict) -> None:
        """A radiologist is waiting: no retries (the gateway times out and says so), one reply."""
        try:
            region = EmbedRegion.model_validate(message)
        except ValidationError as error:
            log.error("malformed region message dropped", extra={"errors": error.error_count()})
            return
        runtime = load_runtime(context.checkpoint, context.device, context.precision)
        reply = embed_region(region, runtime, context.pipeline.layout, context.pipeline.max_image_bytes)
        with context.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(region.reply_to, reply.model_dump_json())
            pipe.expire(region.reply_to, REPLY_TTL_S)
            pipe.execute()


def run_once(task_id: str, ready: StudyReady, context: WorkerContext, statuses: StudyStatusStore) -> StudyStatus:
    """Process the study; a data problem, a timeout or poison becomes a failed status, transient errors raise."""
    def failed(reason: str) -> StudyStatus:
        return StudyStatus(study_instance_uid=ready.study_instance_uid, state="failed", reason=reason,
                           handover=ready.handover, updated_at=time.time())

    try:
        deliveries = enforce_delivery_cap(context.redis, task_id, cap=context.max_deliveries,
                                          ttl_s=context.delivery_ttl_s)
    except DeliveryCapExceeded as error:
        log.error("study given up as poison", extra={"deliveries": error.deliveries})
        return failed(f"given up after {error.deliveries - 1} deliveries: the worker died processing it each time")
    previous = statuses.get(ready.study_instance_uid)
    statuses.put(StudyStatus(study_instance_uid=ready.study_instance_uid, state="processing",
                             handover=ready.handover, updated_at=time.time()))
    try:
        runtime = load_runtime(context.checkpoint, context.device, context.precision)
        config = context.pipeline
        if previous is not None and previous.segmentation_sop_instance_uid:
            config = replace(config, already_sent_uid=previous.segmentation_sop_instance_uid)
        return process_study(ready, runtime, context.store, config)
    except TRANSIENT:
        raise
    except SoftTimeLimitExceeded:
        return failed(f"took longer than {context.soft_time_limit_s} s (delivery {deliveries})")
    except StudyError as error:
        return failed(str(error))
    except Exception as error:  # noqa: BLE001 - recorded, logged, never looped on
        log.exception("study failed unexpectedly", extra={"error": type(error).__name__})
        return failed(f"internal error: {type(error).__name__}")
