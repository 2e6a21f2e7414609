"""The system the demo shows: `tumorsearch run` as `make run` starts it, as one child process.

Same environment as the demo's, plus what a local demo needs: the gateway without authentication (it refuses
that on a non-loopback host), free ports when the default ones are taken, and the demo's calling AE title in the
listener's allow-list when the configured list would not let it in. The child's output goes to a log file, so
the demo's own output stays readable; it is stopped by its PID (SIGTERM, then SIGKILL after a grace).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from services.demo.samples import DemoError
from services.demo.settings import DemoSettings
from shared.broker.embedded import free_port
from shared.config.startup import settings_or_exit

CALLING_AE = "DEMO"
LOG_TAIL_LINES = 30
# What the child is told, on top of the demo's own environment.
AUTH_DISABLED = {"TUMORSEARCH_GATEWAY__AUTH_DISABLED": "true"}
PORT_VARIABLES = {"listener": "TUMORSEARCH_LISTENER__PORT", "gateway": "TUMORSEARCH_GATEWAY__PORT",
                  "vectorhost": "TUMORSEARCH_VECTORHOST__PORT"}
PEERS_VARIABLE = "TUMORSEARCH_LISTENER__PEERS"
LOOPBACK = ("127.0.0.1", "::1", "localhost")  # where the gateway accepts auth_disabled


@dataclass
class Plan:
    """Where the child runs and what it is told."""
    env: dict[str, str]
    settings: DemoSettings
    notes: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def gateway_url(self) -> str:
        return f"http://{reachable(self.settings.gateway.host)}:{self.settings.gateway.port}"

    @property
    def listener_address(self) -> tuple[str, int]:
        return reachable(self.settings.listener.host), self.settings.listener.port


def plan(environ: Mapping[str, str]) -> Plan:
    """The child's environment and the settings it will read from it (exit 78 naming a bad variable)."""
    gateway_host = settings_or_exit(DemoSettings, environ, "demo").gateway.host
    if gateway_host not in LOOPBACK:
        raise DemoError(f"TUMORSEARCH_GATEWAY__HOST={gateway_host}: the demo serves the gateway without "
                        f"authentication, which the gateway allows only on loopback; expected one of "
                        f"{', '.join(LOOPBACK)} (or unset it)", code=2)
    env = dict(environ)
    env.update(AUTH_DISABLED)
    env.setdefault("TUMORSEARCH_LOG__FORMAT", "text")  # as `make run`
    settings = settings_or_exit(DemoSettings, env, "demo")
    env["TUMORSEARCH_HOME"] = str(settings.home.resolve())
    notes = []
    for section, variable in PORT_VARIABLES.items():
        host, port = getattr(settings, section).host, getattr(settings, section).port
        if port_free(host, port):
            continue
        if variable in environ:
            raise DemoError(f"{variable}={port}: expected a free port, found it in use; choose another or unset it "
                            "(the demo then picks a free one)", code=2)
        env[variable] = str(free_port(host))  # never a port this process gave before
        notes.append(f"port {port} is in use: {section} gets port {env[variable]} ({variable})")
    address, _ = reachable(settings.listener.host), settings.listener.port
    if not peer_allowed(settings.listener.peers, CALLING_AE, address):
        prefix = 32 if ipaddress.ip_address(address).version == 4 else 128
        env[PEERS_VARIABLE] = ",".join((*settings.listener.peers, f"{CALLING_AE}@{address}/{prefix}"))
        notes.append(f"the listener's peers do not allow {CALLING_AE}@{address}: added it ({PEERS_VARIABLE})")
    return Plan(env, settings_or_exit(DemoSettings, env, "demo"), notes)


def peer_allowed(entries: tuple[str, ...], calling_ae: str, address: str) -> bool:
    """Whether the listener's allow-list (`CALLING_AE@network`, `*` = any AE title) lets `calling_ae` in from
    `address`: the rule of docs/listener.md, "Peers and limits"."""
    ip = ipaddress.ip_address(address)
    for entry in entries:
        title, _, network = entry.rpartition("@")
        net = ipaddress.ip_network(network, strict=False)
        if title.strip() in ("*", calling_ae) and net.version == ip.version and ip in net:
            return True
    return False


class System:
    """`tumorsearch run` as a child process, its output in `log_path`."""

    def __init__(self, plan: Plan, log_path: Path) -> None:
        self.plan, self.log_path = plan, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- tumorsearch demo: starting `tumorsearch run` at {time.ctime()}\n".encode())
            log.flush()
            # The same interpreter as `tumorsearch` (the venv), whatever PATH says; its own session, so a
            # terminal's Ctrl-C reaches only the demo, which then stops the system in order.
            self.process = subprocess.Popen([sys.executable, "-m", "services.launcher.cli", "run"],
                                            env=self.plan.env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise DemoError(f"`tumorsearch run` exited with code {self.process.returncode}; the end of its log "
                            f"({self.log_path}):\n{self.log_tail()}")

    def wait_ready(self, timeout_s: float, tick: Callable[[], None] | None = None) -> None:
        """Until the listener accepts connections and the gateway's /readyz answers 200."""
        host, port = self.plan.listener_address
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if port_answers(host, port) and http_status(self.plan.gateway_url + "/readyz") == 200:
                return
            if tick is not None:
                tick()
            time.sleep(0.5)
        raise DemoError(f"the system did not become ready within {timeout_s:.0f} s (listener {host}:{port}, "
                        f"gateway {self.plan.gateway_url}/readyz); the end of its log ({self.log_path}):\n"
                        f"{self.log_tail()}")

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM by PID (`run` stops its programs in order), SIGKILL after `grace_s`; then any program of it
        still alive (only if `run` itself had to be killed) by its PID. The exit code of `run`."""
        if self.process is None:
            return None
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if self.process.poll() is None:
            _signal(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        for child in family:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    child.kill()
            except psutil.NoSuchProcess:
                pass
        return code

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def get_json(url: str, timeout_s: float = 5.0) -> tuple[int, dict | None]:
    """(HTTP status, JSON body or None); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ValueError):
        return 0, None


def http_status(url: str, timeout_s: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """True when a server could bind host:port now (nothing listens there)."""
    family = socket.AF_INET6 if ":" in reachable(host) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is not "taken"
        try:
            probe.bind((host or "0.0.0.0", port))
        except OSError:
            return False
    return not port_answers(reachable(host), port)


def reachable(host: str) -> str:
    """The address to connect to a server bound on `host` (a wildcard means this machine)."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else
                                                         "127.0.0.1" if host == "localhost" else host)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
