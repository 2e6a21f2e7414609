"""Runs the real worker for the worker's tests: `tumorsearch vectorstore` and `tumorsearch worker` as
subprocesses on one home and one Redis, studies placed where the listener would put them, hand-overs
sent by task name, and the study status read back from Redis."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from services.bench.worker_study import place_study, send_study_ready
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import StudyStatus
from shared.study_status_store import StudyStatusStore
from shared.vectorstore.qdrant_backend import QdrantStore
from support.ports import free_port, port_is_open
from support.processes import ManagedProcess, running, start_process

TUMORSEARCH = Path(sys.executable).parent / "tumorsearch"
TERMINAL = ("done", "no_tumour", "failed")


@dataclass
class WorkerSystem:
    home: Path
    redis_url: str
    vector_url: str
    env: dict[str, str]
    workdir: Path
    worker: ManagedProcess | None = None

    @property
    def layout(self) -> StudyLayout:
        return StudyLayout(self.home)

    @property
    def store(self) -> QdrantStore:
        return QdrantStore.server(self.vector_url)

    def start_worker(self, name: str = "worker") -> ManagedProcess:
        self.worker = start_process([str(TUMORSEARCH), "worker"], self.workdir / f"{name}.log", env=self.env,
                                    name=name)
        self.worker.wait_until(lambda: " ready." in self.worker.log_path.read_text(errors="replace"), 90,
                               "the worker to report ready")
        return self.worker

    def place(self, files: list[Path]) -> str:
        """Copy a study's files where the listener would have stored them; returns the study UID."""
        return place_study(self.home, files)

    def hand_over(self, study_uid: str, handover: int = 1) -> None:
        send_study_ready(self.redis_url, self.home, study_uid, handover)

    def status(self, study_uid: str) -> StudyStatus | None:
        return StudyStatusStore(redis.Redis.from_url(self.redis_url)).get(study_uid)

    def wait_status(self, study_uid: str, handover: int = 1, timeout: float = 120.0) -> StudyStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(study_uid)
            if status is not None and status.state in TERMINAL and status.handover == handover:
                return status
            time.sleep(0.2)
        log = self.worker.log_tail() if self.worker else ""
        raise AssertionError(f"expected a final status of hand-over {handover} within {timeout}s; found "
                             f"{self.status(study_uid)}\n{log}")

    def process(self, files: list[Path], handover: int = 1) -> StudyStatus:
        study_uid = self.place(files)
        self.hand_over(study_uid, handover)
        return self.wait_status(study_uid, handover)


@contextmanager
def worker_system(workdir: Path, redis_url: str, start: bool = True, **settings: object) -> Iterator[WorkerSystem]:
    """The vector host and (unless start=False) one worker; `settings` become TUMORSEARCH_WORKER__* values."""
    home, port = workdir / "home", free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TUMORSEARCH_")}
    env.update({"TUMORSEARCH_HOME": str(home), "TUMORSEARCH_BROKER__URL": redis_url,
                "TUMORSEARCH_VECTORHOST__PORT": str(port), "TUMORSEARCH_VECTOR_STORE__URL": f"http://127.0.0.1:{port}",
                "TUMORSEARCH_WORKER__DEVICE": "cpu", "TUMORSEARCH_LOG__FORMAT": "json"})
    env.update({f"TUMORSEARCH_WORKER__{key.upper()}": str(value) for key, value in settings.items()})
    with ExitStack() as stack:
        stack.enter_context(running([str(TUMORSEARCH), "vectorstore"], workdir / "vectorstore.log", env=env,
                                    ready=lambda: port_is_open(port), timeout=60, name="vectorstore"))
        system = WorkerSystem(home, redis_url, f"http://127.0.0.1:{port}", env, workdir)
        if start:
            system.start_worker()
        try:
            yield system
        finally:
            if system.worker is not None:
                system.worker.stop()
