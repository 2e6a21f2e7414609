"""The Celery settings every program uses, producer and worker alike (measured in docs/broker.md).

One function so the listener, the gateway and the worker cannot disagree on serializers, routes or the
delivery guarantees. Programs do `Celery(...).config_from_object(celery_config(...))`.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.tasks import TASK_QUEUES

# A task taken by a worker that dies must be processed by another one, exactly the way it was sent.
DELIVERY = {
    # Ack after the task finished, not when it was received: a worker killed mid-study leaves the
    # task in the broker, so another worker processes it. Tasks are idempotent (the contract says so).
    "task_acks_late": True,
    # Same when only the pool child dies (the OOM killer on a large study): requeue at once instead of
    # acking a task that never completed. The delivery cap (shared/broker/delivery.py) stops a study that
    # kills the worker every time from looping forever.
    "task_reject_on_worker_lost": True,
    # Take one task at a time: a prefetched study would wait behind a slow one, and would be one more
    # task held hostage until the visibility timeout if this worker is killed.
    "worker_prefetch_multiplier": 1,
    # After a lost broker connection the message will be redelivered anyway; finishing the task as well
    # would process it twice.
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    # The broker (embedded or a pod) may come up after us: retry instead of dying at start-up.
    "broker_connection_retry_on_startup": True,
    # JSON only: unpickling what comes from a broker is code execution, and messages carry identifiers only.
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_serializer": "json",
}

QUIET = {
    # Our logging set-up (shared/logs.py) owns the root logger; Celery must not replace it.
    "worker_hijack_root_logger": False,
    # No event traffic through the broker for monitoring tools we do not run.
    "task_send_sent_event": False,
    "worker_send_task_events": False,
}


def redis_transport_options(visibility_timeout_s: int, restore_interval_s: int) -> dict[str, Any]:
    return {
        "visibility_timeout": visibility_timeout_s,
        # kombu sweeps for abandoned tasks (unacked, older than the visibility timeout) every
        # interval x throttle seconds: 10 x 10 by default, which is why a killed worker's task came back
        # after 101 s. A sweep is one ZRANGE on the unacked index under a lock: cheap every second.
        "unacked_restore_interval": restore_interval_s,
        "unacked_restore_throttle": 1,
    }


def celery_config(
    broker_url: str,
    visibility_timeout_s: int,
    *,
    restore_interval_s: int = 1,
    result_backend: str | None = None,
    transport_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Celery settings for `broker_url`.

    visibility_timeout_s: seconds after which a task taken by a worker that vanished (SIGKILL, power loss)
    is handed out again. It must exceed the slowest task, or a task still running is delivered twice; it is
    also the delay before such a task is redelivered, so do not make it much longer than needed.
    restore_interval_s: how often each worker looks for such tasks.
    Both apply to the Redis transport only, the one the programs use.
    result_backend: only for a caller that waits for a return value (a region search); see below.
    transport_options: merged over ours (the bench's non-Redis transports need their own).
    """
    if visibility_timeout_s < 1:
        raise ValueError(f"expected visibility_timeout_s >= 1, found {visibility_timeout_s}")
    options: dict[str, Any] = {}
    # Redis options only for Redis: other transports reject unknown ones (SQLAlchemy hands them all to
    # create_engine). The programs' settings accept only redis:// URLs; the bench also tries others.
    if broker_url.startswith(("redis://", "rediss://")):
        options = redis_transport_options(visibility_timeout_s, restore_interval_s)
    options.update(transport_options or {})
    return {
        **DELIVERY,
        **QUIET,
        "broker_url": broker_url,
        "broker_transport_options": options,
        # Each task name goes to its queue, so a radiologist's region search never waits behind studies.
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        # No result backend by default: study tasks report through Qdrant and the PACS, not return values,
        # and every stored result is one more Redis key, kept for a day, that nobody reads.
        "result_backend": result_backend,
        "task_ignore_result": result_backend is None,
    }
