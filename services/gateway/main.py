"""`tumorsearch gateway`: the HTTP API radiology viewers call."""

from __future__ import annotations

import argparse
import logging
import os
import signal

import redis
from waitress import create_server

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.config.startup import settings_or_exit
from shared.logs import configure_logging
from shared.vectorstore.qdrant_backend import QdrantStore

log = logging.getLogger("tumorsearch.gateway")


def readiness_checks(settings: GatewaySettings) -> dict:
    broker = redis.Redis.from_url(settings.broker.url, socket_timeout=2, socket_connect_timeout=2)
    store_settings = settings.vector_store
    api_key = store_settings.api_key.get_secret_value() if store_settings.api_key else None
    store = QdrantStore.server(store_settings.url, api_key=api_key, timeout_s=min(store_settings.timeout_s, 3.0))
    return {"broker": broker.ping, "vector_store": store.ping}


def command(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="tumorsearch gateway",
                            description="HTTP gateway. Settings: TUMORSEARCH_GATEWAY__* "
                                        "(docs/configuration.md).").parse_args(argv)
    settings = settings_or_exit(GatewaySettings, os.environ, "gateway")
    configure_logging(settings.log.level, settings.log.format, "gateway")
    app = create_app(readiness_checks(settings))
    section = settings.gateway
    server = create_server(app, host=section.host, port=section.port, threads=section.threads)
    # waitress has no signal handling of its own: close the listening socket and leave run() cleanly.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.close())
    log.info("serving", extra={"url": f"http://{section.host}:{section.port}/"})
    try:
        server.run()
    except OSError:
        pass  # run() raises EBADF once close() pulled the socket away; that is the normal exit here
    log.info("stopped")
    return 0
