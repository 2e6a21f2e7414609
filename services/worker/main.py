"""`tumorsearch worker`: the Celery worker that turns received studies into indexed tumours."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import redis

from services.worker.celery_app import make_celery
from services.worker.pipeline import PipelineConfig
from services.worker.settings import WorkerSettings
from services.worker.tasks import WorkerContext, register_tasks
from services.worker.tumours import SizeLimits
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import INTERACTIVE_QUEUE, STUDY_QUEUE
from shared.program import start_program
from shared.vectorstore.factory import open_server

KEY_FILE = Path("keys") / "patient-hash.key"


def worker_argv(settings: WorkerSettings) -> list[str]:
    section = settings.worker
    return [
        "worker",
        f"--hostname=tumorsearch-worker-{os.getpid()}@{socket.gethostname()}",
        f"--queues={INTERACTIVE_QUEUE},{STUDY_QUEUE}",
        f"--concurrency={section.concurrency}",
        # solo for one slot: no pool process to lose, and SIGTERM reaches the task's process directly.
        f"--pool={'solo' if section.concurrency == 1 else 'prefork'}",
        f"--loglevel={settings.log.level}",
        "--without-gossip", "--without-mingle",  # one worker per machine here; no cluster chatter
    ]


def patient_key(settings: WorkerSettings) -> bytes:
    """The configured key, else one random key per installation kept under <home>/keys (created once,
    readable by the owner only), so every worker of one machine hashes a patient the same way."""
    if settings.worker.patient_hash_key is not None:
        return settings.worker.patient_hash_key.get_secret_value().encode()
    path = settings.home / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_hex(32).encode())
    return path.read_bytes()


def build_context(settings: WorkerSettings) -> WorkerContext:
    from shared.model.checkpoint import SHIPPED  # torch only in the worker

    section = settings.worker
    layout = StudyLayout(settings.home)
    layout.ensure()
    pipeline = PipelineConfig(layout, section.series_rule, section.max_image_mb * 1024 * 1024,
                              SizeLimits(section.min_tumor_area_mm2, section.min_tumor_volume_mm3),
                              patient_key(settings), section.seg_destination)
    return WorkerContext(
        pipeline=pipeline, checkpoint=section.checkpoint or SHIPPED, device=section.device,
        precision=section.precision,
        redis=redis.Redis.from_url(settings.broker.url, socket_timeout=10, socket_connect_timeout=10),
        store=open_server(settings.vector_store), max_deliveries=section.max_deliveries,
        # A count must outlive the gap between two deliveries: the visibility timeout plus a run.
        delivery_ttl_s=2 * settings.broker.visibility_timeout_s + section.soft_time_limit_s,
        soft_time_limit_s=section.soft_time_limit_s)


def command(argv: list[str]) -> int:
    settings = start_program("worker", WorkerSettings, argv, "Celery worker. Settings: TUMORSEARCH_WORKER__* "
                             "(docs/configuration.md).", os.environ)
    app = make_celery(settings)
    context = build_context(settings)
    register_tasks(app, context)
    if settings.worker.concurrency == 1:  # solo pool: load the model before the first study arrives
        from services.worker.runtime import load_runtime

        load_runtime(context.checkpoint, context.device, context.precision)
    app.worker_main(argv=worker_argv(settings))
    return 0
