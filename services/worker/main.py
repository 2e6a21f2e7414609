"""`tumorsearch worker`: the Celery worker that turns received studies into indexed tumours."""

from __future__ import annotations

import os
import socket

from services.worker.celery_app import make_celery
from services.worker.settings import WorkerSettings
from shared.contracts.tasks import INTERACTIVE_QUEUE, STUDY_QUEUE
from shared.program import start_program


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


def command(argv: list[str]) -> int:
    settings = start_program("worker", WorkerSettings, argv, "Celery worker. Settings: TUMORSEARCH_WORKER__* "
                             "(docs/configuration.md).", os.environ)
    app = make_celery(settings)
    app.worker_main(argv=worker_argv(settings))
    return 0
