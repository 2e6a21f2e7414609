"""The Celery app and tasks of `tumorsearch bench broker`, run by a real `celery worker` subprocess.

The bench process configures the app with `configure()`; the worker subprocess gets the same settings
through BENCH_BROKER_* variables (this is a program module, so it may read its environment). Tasks
report by appending one line to a file, which works with every transport and needs no result backend.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery

from shared.broker.celery_config import celery_config

QUEUE = "bench"
NOOP = "bench.noop"
SLEEPER = "bench.sleeper"
ENV_URL = "BENCH_BROKER_URL"
ENV_VISIBILITY = "BENCH_BROKER_VISIBILITY_TIMEOUT_S"
ENV_OPTIONS = "BENCH_BROKER_TRANSPORT_OPTIONS"
ENV_POLLING = "BENCH_BROKER_POLLING_INTERVAL_S"

app = Celery("tumorsearch-bench")


def configure(target: Celery, broker_url: str, visibility_timeout_s: int,
              transport_options: dict[str, Any] | None = None, polling_interval_s: float | None = None) -> Celery:
    """polling_interval_s: sleep of the polling transports (filesystem, SQLAlchemy) when a poll finds nothing.

    kombu's default, 1 s, caps a prefetch-1 worker near one task a second (each task ends in an empty
    poll), which measures the default rather than the transport, so the bench lowers it.
    """
    options = dict(transport_options or {})
    if polling_interval_s is not None and broker_url.startswith("filesystem://"):
        options["polling_interval"] = polling_interval_s
    elif polling_interval_s is not None and broker_url.startswith("sqla+"):
        # The SQLAlchemy transport hands every transport option to create_engine, which rejects this one;
        # the class attribute is the default the transport reads instead (bench only).
        from kombu.transport.sqlalchemy import Transport
        Transport.polling_interval = polling_interval_s
    config = celery_config(broker_url, visibility_timeout_s, transport_options=options)
    config["task_routes"] = {NOOP: {"queue": QUEUE}, SLEEPER: {"queue": QUEUE}}
    target.config_from_object(config)
    return target


def worker_environment(broker_url: str, visibility_timeout_s: int, transport_options: dict[str, Any] | None = None,
                       polling_interval_s: float | None = None) -> dict[str, str]:
    """Variables that make the worker subprocess configure itself as `configure()` does."""
    return {ENV_URL: broker_url, ENV_VISIBILITY: str(visibility_timeout_s),
            ENV_OPTIONS: json.dumps(transport_options or {}), ENV_POLLING: json.dumps(polling_interval_s)}


def _append(path: str, line: str) -> None:
    # O_APPEND with one short write per line: lines from successive processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@app.task(name=NOOP)
def noop(done_path: str, index: int) -> None:
    _append(done_path, str(index))


@app.task(name=SLEEPER)
def sleeper(started_path: str, sleep_s: float) -> None:
    # The bench reads this pid to kill only the pool child (the OOM-killer case).
    _append(started_path, f"{time.time():.6f} {os.getpid()}")
    time.sleep(sleep_s)


if os.environ.get(ENV_URL):
    configure(app, os.environ[ENV_URL], int(os.environ[ENV_VISIBILITY]), json.loads(os.environ[ENV_OPTIONS]),
              json.loads(os.environ.get(ENV_POLLING, "null")))
