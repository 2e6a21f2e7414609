"""Runs `tumorsearch listener` as a real subprocess for the listener's tests and reads the hand-over queue
with kombu (the `listener_factory` fixture is in tests/integration/conftest.py)."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kombu import Connection
from pydicom.filereader import _read_file_meta_info, read_preamble

from support.ports import free_port, port_is_open
from support.processes import ManagedProcess, running
from shared.contracts.tasks import PROCESS_STUDY, STUDY_QUEUE

LISTENER_AE = "TUMORSEARCH"
TUMORSEARCH = Path(sys.executable).parent / "tumorsearch"


@dataclass
class Listener:
    port: int
    home: Path
    process: ManagedProcess

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The log once it contains `text` (the association line is written when the socket closes)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {text!r} in the listener's log within {timeout}s; found\n{self.log()}")
            time.sleep(0.05)
        return self.log()


def listener_environment(home: Path, redis_url: str, port: int, settings: dict[str, object]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TUMORSEARCH_")}
    env.update({"TUMORSEARCH_HOME": str(home), "TUMORSEARCH_BROKER__URL": redis_url,
                "TUMORSEARCH_LISTENER__PORT": str(port), "TUMORSEARCH_LISTENER__QUIET_PERIOD_S": "1",
                "TUMORSEARCH_LOG__FORMAT": "json"})
    env.update({f"TUMORSEARCH_LISTENER__{key.upper()}": str(value) for key, value in settings.items()})
    return env


@contextmanager
def start_listener(workdir: Path, redis_url: str, *, home: Path | None = None, port: int | None = None,
                   name: str = "listener", **settings: object) -> Iterator[Listener]:
    """A listener on a free port (quiet period 1 s unless given); stopped by PID at exit."""
    port = port or free_port()
    home = home or workdir / "home"
    env = listener_environment(home, redis_url, port, settings)
    with running([str(TUMORSEARCH), "listener"], workdir / f"{name}.log", env=env, name=name,
                 ready=lambda: port_is_open(port), what=f"listener on port {port}") as process:
        yield Listener(port, home, process)


def study_messages(redis_url: str, *, wait_s: float, expect: int | None = None) -> list[dict]:
    """Every StudyReady waiting in the studies queue after `wait_s` (sooner once `expect` arrived)."""
    messages: list[dict] = []
    deadline = time.monotonic() + wait_s
    with Connection(redis_url) as connection:
        queue = connection.SimpleQueue(STUDY_QUEUE, no_ack=True)
        try:
            while time.monotonic() < deadline and (expect is None or len(messages) < expect):
                try:
                    message = queue.get(block=True, timeout=0.2)
                except queue.Empty:
                    continue
                assert message.headers["task"] == PROCESS_STUDY, f"expected {PROCESS_STUDY}; found {message.headers}"
                args, kwargs, _ = message.decode()
                assert args == [] and list(kwargs) == ["message"], f"expected message= only; found {args} {kwargs}"
                messages.append(kwargs["message"])
        finally:
            queue.close()
    return messages


def split_part10(raw: bytes) -> tuple[str, bytes]:
    """(transfer syntax, the dataset bytes after the file meta information) of a DICOM file."""
    stream = io.BytesIO(raw)
    read_preamble(stream, False)
    meta = _read_file_meta_info(stream)
    return str(meta.TransferSyntaxUID), raw[stream.tell():]
