"""`tumorsearch run` as `make run` starts it: every part comes up with no external server, answers,
stops on SIGINT (Ctrl-C) and SIGTERM within 10 s leaving no process behind, and keeps its data."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from shared.vectorstore.base import CollectionSpec, PointRecord
from shared.vectorstore.qdrant_backend import QdrantStore
from support.ports import free_port
from support.processes import start_process

pytestmark = pytest.mark.e2e

STOP_LIMIT_S = 10.0
POINT = "6f1c1e7a-3b8e-4c2e-9a55-6d1f4b2a9c02"


def system_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUMORSEARCH_")}
    env.update({
        "TUMORSEARCH_HOME": str(home),
        "TUMORSEARCH_LOG__FORMAT": "json",
        "TUMORSEARCH_GATEWAY__PORT": str(free_port()),
        "TUMORSEARCH_LISTENER__PORT": str(free_port()),
        "TUMORSEARCH_VECTORHOST__PORT": str(free_port()),
    })
    return env


def start_system(env: dict[str, str], log: Path):
    proc = start_process([sys.executable, "-m", "services.launcher.cli", "run"], log, name="tumorsearch-run",
                         env=env)
    proc.wait_until(lambda: _ready_line(log) is not None, 120, "`tumorsearch run` to log ready")
    return proc, _ready_line(log)


def _ready_line(log: Path) -> dict | None:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"msg": "ready"' in line:
            return json.loads(line)
    return None


def readyz(env: dict[str, str]) -> dict:
    url = f"http://127.0.0.1:{env['TUMORSEARCH_GATEWAY__PORT']}/readyz"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def stop_and_check(proc, signum: int) -> None:
    """Send signum to the supervisor only (as a terminal's Ctrl-C reaches it); all must be gone in 10 s."""
    family = [proc.pid] + [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
    assert len(family) >= 5, f"expected broker, vector store, worker, gateway and listener; found {family}"
    started = time.monotonic()
    os.kill(proc.pid, signum)
    proc.popen.wait(timeout=STOP_LIMIT_S + 5)
    left = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    deadline = started + STOP_LIMIT_S
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    elapsed = time.monotonic() - started
    assert not left, f"still running {elapsed:.1f} s after signal {signum}: {left}\n{proc.log_tail()}"
    assert elapsed < STOP_LIMIT_S, f"stopping took {elapsed:.1f} s"
    assert proc.popen.returncode == 0, proc.log_tail()


def test_run_starts_everything_stops_on_signals_and_keeps_data(tmp_path, dcmtk):
    env = system_env(tmp_path / "home")
    proc, ready = start_system(env, tmp_path / "run-1.log")
    assert readyz(env)["status"] == "ready"
    echo = dcmtk.echoscu(int(env["TUMORSEARCH_LISTENER__PORT"]), called_aet="TUMORSEARCH")
    assert echo.returncode == 0, echo.stdout + echo.stderr
    redis.Redis.from_url(ready["broker"]).set("tumorsearch:e2e", "kept")
    store = QdrantStore.server(f"http://127.0.0.1:{env['TUMORSEARCH_VECTORHOST__PORT']}")
    store.ensure_collection(CollectionSpec("tumors__e2e", "roi", 4))
    store.upsert("tumors__e2e", [PointRecord(POINT, [0.1, 0.2, 0.3, 0.4], {"tumor_type": "glioma"})])
    store.close()
    stop_and_check(proc, signal.SIGINT)

    proc, ready = start_system(env, tmp_path / "run-2.log")
    assert redis.Redis.from_url(ready["broker"]).get("tumorsearch:e2e") == b"kept"
    store = QdrantStore.server(f"http://127.0.0.1:{env['TUMORSEARCH_VECTORHOST__PORT']}")
    assert [p.payload for p in store.retrieve("tumors__e2e", [POINT])] == [{"tumor_type": "glioma"}]
    store.close()
    stop_and_check(proc, signal.SIGTERM)


def test_run_refuses_invalid_settings_naming_the_variable(tmp_path):
    env = system_env(tmp_path / "home")
    env["TUMORSEARCH_RUN__STOP_TIMEOUT_S"] = "soon"
    proc = start_process([sys.executable, "-m", "services.launcher.cli", "run"], tmp_path / "bad.log", env=env)
    assert proc.popen.wait(timeout=60) == 78
    assert "TUMORSEARCH_RUN__STOP_TIMEOUT_S" in proc.log_tail()
