"""The Flask application factory. Dependencies (readiness checks, later the vector store) are passed
in, so tests build the app with real or local components without touching the environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask

from services.gateway.health import health
from services.gateway.problems import register_problem_handlers


def create_app(readiness: Mapping[str, Callable[[], None]]) -> Flask:
    app = Flask("tumorsearch.gateway")
    app.json.sort_keys = False
    app.extensions["tumorsearch.readiness"] = dict(readiness)
    register_problem_handlers(app)
    app.register_blueprint(health)
    return app
