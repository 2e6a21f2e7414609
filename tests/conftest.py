"""Fixtures shared by all tests: free ports, real Redis/Orthanc servers, dcmtk clients, the shared data dir.

Logic lives in tests/support; this file only wires it to pytest. Servers are function-scoped: each test gets an
empty Redis and an empty Orthanc, and nothing survives the test (a session-end hook fails the run if it does).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from support import leaks
from support.dcmtk import Dcmtk
from support.ports import free_port as _free_port
from support.servers import OrthancServer, RedisServer, start_orthanc, start_redis

REPO = Path(__file__).resolve().parents[1]
DATA_DIR_ENV = "TUMORSEARCH_DATA_DIR"


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Call it for a TCP port free on 127.0.0.1 (never the same one twice in a run)."""
    return _free_port


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data directory; a missing one fails the test (a silent skip would hide a broken setup)."""
    path = Path(os.environ.get(DATA_DIR_ENV) or REPO.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.fail(
            f"expected the shared data directory at {path} (set {DATA_DIR_ENV} to override); found nothing there",
            pytrace=False,
        )
    return path


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Empty redis-server: .port, .url (redis://127.0.0.1:PORT/0), .url_for(db), .pid."""
    with start_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Callable[..., OrthancServer]]:
    """Start Orthancs with custom aet/modalities/extra config (see support.servers.start_orthanc)."""
    started: list[OrthancServer] = []
    with ExitStack() as stack:

        def make(**kwargs) -> OrthancServer:
            server = stack.enter_context(start_orthanc(tmp_path / f"orthanc-{len(started)}", **kwargs))
            started.append(server)
            return server

        yield make


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., OrthancServer]) -> OrthancServer:
    """Empty Orthanc: .http_port, .dicom_port, .url, .aet, .pid, .add_modality(name, aet, port), .get(path)."""
    return orthanc_factory()


@pytest.fixture(scope="session")
def dcmtk() -> Dcmtk:
    """dcmtk's storescu/echoscu (absolute /usr/bin paths), each returning a CompletedProcess."""
    return Dcmtk()


def pytest_sessionfinish(session: pytest.Session) -> None:
    leftovers = leaks.leftover_processes()
    if not leftovers:
        return
    leaks.end_leftovers()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "processes started by tests were still running at session end (now killed):\n  " + "\n  ".join(leftovers)
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("!", "LEAKED PROCESSES", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
