"""`tumorsearch gateway`: the HTTP API radiology viewers call, and the web page."""

from __future__ import annotations

import logging
import os

import redis
from celery import Celery

from services.gateway.app import create_app
from services.gateway.deps import GatewayDeps
from services.gateway.settings import GatewaySettings
from shared.broker.celery_config import celery_config
from shared.contracts.storage import StudyLayout
from shared.program import start_program
from shared.shipped_model import shipped_model_version
from shared.vectorstore.factory import open_server
from shared.wsgi import serve_until_signalled

log = logging.getLogger("tumorsearch.gateway")
AUDIT_FILE = "audit/gateway-audit.jsonl"


def readiness_checks(settings: GatewaySettings, client: redis.Redis) -> dict:
    # A readiness probe must answer quickly even when the store hangs.
    store = open_server(settings.vector_store, timeout_s=min(settings.vector_store.timeout_s, 3.0))
    return {"broker": client.ping, "vector_store": store.ping}


def build_deps(settings: GatewaySettings) -> GatewayDeps:
    client = redis.Redis.from_url(settings.broker.url, socket_timeout=5, socket_connect_timeout=2)
    # The region search blocks on a reply list for up to region_timeout_s: its own client, no socket timeout.
    waiting = redis.Redis.from_url(settings.broker.url, socket_connect_timeout=2)
    celery = Celery("tumorsearch-gateway", set_as_current=False)
    celery.conf.update(celery_config(settings.broker.url, settings.broker.visibility_timeout_s))
    return GatewayDeps(
        readiness=readiness_checks(settings, client), store=open_server(settings.vector_store), redis=client,
        redis_blocking=waiting,
        layout=StudyLayout(settings.home), model_version=settings.gateway.model_version or shipped_model_version(),
        section=settings.gateway, audit_path=settings.home / AUDIT_FILE,
        send_task=lambda name, kwargs: celery.send_task(name, kwargs=kwargs, retry=False))


def command(argv: list[str]) -> int:
    settings = start_program("gateway", GatewaySettings, argv, "HTTP gateway. Settings: TUMORSEARCH_GATEWAY__* "
                             "(docs/configuration.md).", os.environ)
    section = settings.gateway
    if section.auth_disabled:
        log.warning("authentication disabled: every caller is an admin; only for a local demo")
    serve_until_signalled(create_app(build_deps(settings)), section.host, section.port, section.threads, log)
    return 0
