"""API key management for admins: create (the key is shown once), list (never a key or its digest),
delete. Each change is audited as a security alert (DCM 110113 / 110137). The ApiKeyStore comes from
`app.extensions["tumorsearch.keys"]`; the audit log, when installed, from `app.extensions["tumorsearch.audit"]`."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, Conflict, NotFound

from services.gateway.audit import EXTENSION as AUDIT_EXTENSION
from services.gateway.audit import SECURITY_ALERT, USER_SECURITY_ATTRIBUTES_CHANGED
from services.gateway.auth import ROLES, ApiKeyStore, KeyNameTaken, requires_admin
from services.gateway.problems import problem

log = logging.getLogger("tumorsearch.gateway")

KEYS_EXTENSION = "tumorsearch.keys"
KEY_REQUEST_FIELDS = {"name", "role"}

admin = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


def _store() -> ApiKeyStore:
    return current_app.extensions[KEYS_EXTENSION]


def _key_request(body: Any) -> tuple[str, str]:
    expected = 'expected a JSON object {"name": "<key name>", "role": "viewer" | "admin"}'
    if not isinstance(body, dict):
        found = "no JSON body (is Content-Type application/json?)" if body is None else type(body).__name__
        raise BadRequest(f"{expected}; found {found}")
    unexpected = sorted(set(body) - KEY_REQUEST_FIELDS)
    if unexpected or not KEY_REQUEST_FIELDS <= set(body):
        raise BadRequest(f"{expected}; found the fields {sorted(body)}")
    if body["role"] not in ROLES:
        raise BadRequest(f"expected role 'viewer' or 'admin'; found {str(body['role'])[:40]!r}")
    return body["name"], body["role"]


def _audit(event: str, name: str, role: str | None) -> None:
    audit = current_app.extensions.get(AUDIT_EXTENSION)
    if audit is not None:
        audit.record(g.caller, event, SECURITY_ALERT, {"key_name": name, "role": role}, [], "success",
                     type_code=USER_SECURITY_ATTRIBUTES_CHANGED)


@admin.errorhandler(redis.RedisError)
def _store_down(error: redis.RedisError) -> Response:
    log.warning("API key store unreachable", extra={"error_type": type(error).__name__})
    return problem(503, "Service Unavailable", "the API key store (Redis) does not answer; try again shortly")


@admin.post("/keys")
@requires_admin
def create_key() -> Response:
    name, role = _key_request(request.get_json(silent=True))
    try:
        key = _store().create(name, role)
    except KeyNameTaken as error:
        raise Conflict(str(error)) from None
    except ValueError as error:
        raise BadRequest(str(error)) from None
    _audit("api key created", name, role)
    response = jsonify(name=name, role=role, key=key)  # the only time the key is ever shown
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/admin/keys/{name}"
    return response


@admin.get("/keys")
@requires_admin
def list_keys() -> Response:
    return jsonify(keys=_store().list())


@admin.delete("/keys/<name>")
@requires_admin
def delete_key(name: str) -> Response:
    if not _store().delete(name):
        raise NotFound(f"expected an existing API key name; found no key named {name[:64]!r}")
    _audit("api key deleted", name, None)
    return Response(status=204)
