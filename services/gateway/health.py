"""Liveness and readiness: /healthz says the process answers; /readyz says it can do its work (the
vector store and the broker both answer). Kubernetes routes traffic on /readyz only."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, current_app, jsonify

Check = Callable[[], None]  # raises when the dependency is not usable

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    checks: dict[str, Check] = current_app.extensions["tumorsearch.readiness"]
    results, ready = {}, True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"status": "ok"}
        except Exception as error:  # any failure means "not ready"; the reason is reported, not raised
            ready = False
            results[name] = {"status": "unavailable", "error": f"{type(error).__name__}: {error}"[:300]}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    response = jsonify(status="ready" if ready else "not ready", checks=results)
    response.status_code = 200 if ready else 503
    return response
