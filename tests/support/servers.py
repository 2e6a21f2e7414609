"""Real servers for integration tests: Redis and Orthanc on free ports, each in its own tmp dir.

Both are the Debian binaries (bash deploy/local/system-packages.sh test installs them), started with a config this
module writes, so nothing from /etc (system plugins, system storage, system ports) is used.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.ports import LOCALHOST, free_port
from support.processes import ManagedProcess, running

REDIS_BINARY = Path("/usr/bin/redis-server")
ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
START_TIMEOUT = 30.0  # generous: 2 cores shared with other test runs


def _require_binary(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"expected the Debian binary {path}; not found. Install with: bash deploy/local/system-packages.sh test"
        )


@dataclass
class RedisServer:
    port: int
    workdir: Path
    process: ManagedProcess = field(repr=False)
    host: str = LOCALHOST

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"


def redis_ping(port: int, host: str = LOCALHOST) -> bool:
    """Raw RESP PING, so readiness does not depend on redis-py (and "LOADING" replies count as not ready)."""
    with socket.create_connection((host, port), timeout=1.0) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def redis_config(workdir: Path, port: int, persistence: bool) -> str:
    # No persistence by default: tests start from an empty broker and leave nothing on disk to clean.
    persist = ["save 1 1", "appendonly yes"] if persistence else ['save ""', "appendonly no"]
    return "\n".join(
        [
            f"bind {LOCALHOST}",
            f"port {port}",
            "protected-mode yes",
            "daemonize no",
            'logfile ""',  # stdout, which the process helper writes to redis.log
            f"dir {workdir}",
            *persist,
            "",
        ]
    )


@contextmanager
def start_redis(workdir: Path, *, port: int | None = None, persistence: bool = False) -> Iterator[RedisServer]:
    """A redis-server on a free port with a generated config in workdir; stopped by PID on exit."""
    _require_binary(REDIS_BINARY)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "redis.conf"
    conf.write_text(redis_config(workdir, port, persistence))
    with running(
        [str(REDIS_BINARY), str(conf)],
        workdir / "redis.log",
        ready=lambda: redis_ping(port),
        what=f"PONG from redis on {LOCALHOST}:{port}",
        timeout=START_TIMEOUT,
        name="redis-server",
    ) as proc:
        yield RedisServer(port=port, workdir=workdir, process=proc)


@dataclass
class OrthancServer:
    http_port: int
    dicom_port: int
    aet: str
    workdir: Path
    config_path: Path
    process: ManagedProcess = field(repr=False)
    host: str = LOCALHOST

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """One REST call; returns the decoded JSON (or None for an empty body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def instances(self) -> list[str]:
        return self.get("/instances")

    def add_modality(self, name: str, aet: str, port: int, host: str = LOCALHOST) -> None:
        """Register a DICOM peer at runtime (e.g. our listener) so Orthanc can C-STORE to it."""
        self.request("PUT", f"/modalities/{name}", {"AET": aet, "Host": host, "Port": port})

    def modalities(self) -> list[str]:
        return self.get("/modalities")

    def wait_for_system(self, timeout: float = START_TIMEOUT) -> dict:
        self.process.wait_until(lambda: "Version" in self.get("/system"), timeout, f"GET {self.url}/system")
        return self.get("/system")


def orthanc_config(
    workdir: Path,
    http_port: int,
    dicom_port: int,
    aet: str,
    modalities: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The complete Orthanc configuration; nothing is read from /etc/orthanc."""
    config: dict[str, Any] = {
        "Name": f"tumorsearch-test-{aet}",
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        # Debian's /etc/orthanc/orthanc.json loads /usr/share/orthanc/plugins/ (worklists, serve-folders);
        # our own config file replaces it entirely, and an empty list makes "no plugins" explicit.
        "Plugins": [],
        "LuaScripts": [],
        "SaveJobs": False,
        "DicomModalities": dict(modalities or {}),
        # Orthanc keeps an outgoing association open 5 s by default; tests want the release (our listener's
        # "study done" signal) right after the last C-STORE.
        "DicomAssociationCloseDelay": 0,
    }
    config.update(extra or {})
    return config


@contextmanager
def start_orthanc(
    workdir: Path,
    *,
    aet: str = "ORTHANC",
    modalities: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[OrthancServer]:
    """Orthanc on free HTTP and DICOM ports, storage in workdir; waits for /system; stopped by PID on exit.

    modalities: {"NAME": {"AET": ..., "Host": ..., "Port": ...}}; extra: any other Orthanc config keys.
    """
    _require_binary(ORTHANC_BINARY)
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config_path = workdir / "orthanc.json"
    config = orthanc_config(workdir, http_port, dicom_port, aet, modalities, extra)
    config_path.write_text(json.dumps(config, indent=2))
    with running(
        [str(ORTHANC_BINARY), "--no-jobs", str(config_path)], workdir / "orthanc.log", name="Orthanc"
    ) as proc:
        server = OrthancServer(http_port, dicom_port, aet, workdir, config_path, proc)
        server.wait_for_system()
        proc.wait_for_port(dicom_port, timeout=START_TIMEOUT)
        yield server
