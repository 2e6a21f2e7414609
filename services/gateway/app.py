"""The Flask application factory. Everything it needs comes in `GatewayDeps` (built by main.py from the
settings, or by tests from real local components), so no blueprint touches the environment."""

from __future__ import annotations

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from services.gateway.admin import admin
from services.gateway.api import api
from services.gateway.audit import AuditLog, install_audit_of_failures, record_query
from services.gateway.auth import ApiKeyStore, Authenticator, install_auth
from services.gateway.oidc import OidcVerifier
from services.gateway.deps import GatewayDeps
from services.gateway.health import health
from services.gateway.limits import install_limits
from services.gateway.metrics import install_metrics
from services.gateway.openapi import openapi
from services.gateway.problems import register_problem_handlers
from services.gateway.region import region
from services.gateway.reindex import reindex
from services.gateway.ui import ui

PUBLIC_PATHS = ("/", "/healthz", "/readyz", "/metrics", "/ui/", "/favicon.ico", "/api/v1/openapi.json")
QUERY_EVENT = "Query"


def create_app(deps: GatewayDeps) -> Flask:
    app = Flask("tumorsearch.gateway", static_folder=None)
    app.json.sort_keys = False  # Flask sorts every answer's keys by default: CPU per query for nothing
    if deps.section.trusted_proxies:
        # Behind an ingress: the client's address (rate limits, audit) comes from X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=deps.section.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=1)
    app.json.sort_keys = False
    app.extensions["tumorsearch.deps"] = deps
    app.extensions["tumorsearch.readiness"] = dict(deps.readiness)
    keys = ApiKeyStore(deps.redis, bootstrap_admin_key=_secret(deps.section.bootstrap_admin_key))
    app.extensions["tumorsearch.keys"] = keys
    register_problem_handlers(app)
    install_metrics(app)
    install_limits(app, deps.redis, deps.section.rate_limit_per_minute, deps.section.cors_origins,
                   deps.section.max_body_bytes)
    install_auth(app, Authenticator(keys, _oidc(deps), deps.section.auth_disabled), PUBLIC_PATHS)
    install_audit_of_failures(app, AuditLog(deps.audit_path))  # also makes it the app's audit log
    _audit_queries(app)
    for blueprint in (health, api, region, openapi, admin, reindex, ui):
        app.register_blueprint(blueprint)
    return app


def _secret(value) -> str | None:  # noqa: ANN001 - SecretStr | None
    return value.get_secret_value() if value is not None else None


def _oidc(deps: GatewayDeps) -> OidcVerifier | None:
    section = deps.section
    if not section.oidc_issuer:
        return None
    return OidcVerifier(section.oidc_issuer, section.oidc_audience, section.oidc_jwks_url, section.oidc_algorithms,
                        section.oidc_role_claim, section.oidc_admin_role)


def _audit_queries(app: Flask) -> None:
    """Every answered query of /api/v1 is one audit event: who, what was asked, which studies came back."""
    @app.after_request
    def _record(response):  # noqa: ANN001, ANN202 - Flask's response
        if (g.get("caller") is None or not request.path.startswith("/api/v1/") or request.path.startswith("/api/v1/admin")
                or request.path.endswith("/thumbnail.png")):  # an image of a tumour already listed, not a query
            return response
        returned = sorted({r["tumor"]["study_instance_uid"] for r in g.get("tumorsearch_results", [])})
        query = {"path": request.path, "args": request.args.to_dict(flat=False)}
        record_query(QUERY_EVENT, query, returned, "success" if response.status_code < 400 else "failure")
        return response
