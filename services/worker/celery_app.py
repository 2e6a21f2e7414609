"""The worker's Celery application: the shared broker configuration (acks late, redelivery after a
crash, prefetch 1) and the queues of shared.contracts.tasks."""

from __future__ import annotations

from celery import Celery

from services.worker.settings import WorkerSettings
from shared.broker.celery_config import celery_config


def make_celery(settings: WorkerSettings) -> Celery:
    app = Celery("tumorsearch-worker", set_as_current=True)
    app.conf.update(celery_config(settings.broker.url, settings.broker.visibility_timeout_s))
    return app
