"""`tumorsearch gateway`: the HTTP API radiology viewers call."""

from __future__ import annotations

import logging
import os

import redis

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.program import start_program
from shared.vectorstore.factory import open_server
from shared.wsgi import serve_until_signalled

log = logging.getLogger("tumorsearch.gateway")


def readiness_checks(settings: GatewaySettings) -> dict:
    broker = redis.Redis.from_url(settings.broker.url, socket_timeout=2, socket_connect_timeout=2)
    # A readiness probe must answer quickly even when the store hangs.
    store = open_server(settings.vector_store, timeout_s=min(settings.vector_store.timeout_s, 3.0))
    return {"broker": broker.ping, "vector_store": store.ping}


def command(argv: list[str]) -> int:
    settings = start_program("gateway", GatewaySettings, argv, "HTTP gateway. Settings: TUMORSEARCH_GATEWAY__* "
                             "(docs/configuration.md).", os.environ)
    section = settings.gateway
    serve_until_signalled(create_app(readiness_checks(settings)), section.host, section.port, section.threads, log)
    return 0
