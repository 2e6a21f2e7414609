"""Authentication, roles, key management, audit and limits on a minimal Flask app wired like the gateway
(not app.py): real Redis, Flask's test client."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import redis
from flask import Flask, g, jsonify, request
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.gateway.admin import admin
from services.gateway.audit import AuditLog, install_audit_of_failures, record_query
from services.gateway.auth import KEYS_HASH, ApiKeyStore, Authenticator, install_auth, requires_admin
from services.gateway import limits
from services.gateway.limits import install_limits
from services.gateway.problems import register_problem_handlers

pytestmark = pytest.mark.integration

BOOTSTRAP = "bootstrap-" + "b" * 40
ALLOWED_ORIGIN = "https://viewer.hospital.example"
PROBLEM = "application/problem+json"


def build_app(tmp_path: Path, limits_redis: redis.Redis, keys_redis: redis.Redis, *, rate: int = 1000,
              max_body: int = 2048, disabled: bool = False) -> Flask:
    app = Flask("test-gateway")
    register_problem_handlers(app)
    keys = ApiKeyStore(keys_redis, bootstrap_admin_key=BOOTSTRAP)
    app.extensions["tumorsearch.keys"] = keys
    install_auth(app, Authenticator(keys, None, disabled=disabled))
    install_limits(app, limits_redis, rate, [ALLOWED_ORIGIN], max_body)
    install_audit_of_failures(app, AuditLog(tmp_path / "audit" / "audit.jsonl"))
    app.register_blueprint(admin)

    @app.get("/api/v1/ping")
    def ping():
        record_query("ping", {"k": 3}, ["1.2.3.4"])
        return jsonify(caller=g.caller.name, role=g.caller.role)

    @app.post("/api/v1/echo")
    def echo():
        return jsonify(size=len(request.get_data()))

    @app.post("/api/v1/admin/reindex")
    @requires_admin
    def reindex():
        return jsonify(started=True), 202

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


@pytest.fixture
def store(redis_server) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def app(tmp_path, store) -> Flask:
    return build_app(tmp_path, store, store)


@pytest.fixture
def client(app):
    return app.test_client()


def as_admin() -> dict:
    return {"X-API-Key": BOOTSTRAP}


def new_key(client, name: str = "reading-room", role: str = "viewer") -> str:
    answer = client.post("/api/v1/admin/keys", json={"name": name, "role": role}, headers=as_admin())
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["key"]


def audit_lines(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]


def test_missing_credentials_are_a_401_problem_with_a_bearer_challenge(client):
    answer = client.get("/api/v1/ping")
    assert answer.status_code == 401 and answer.mimetype == PROBLEM
    assert "missing credentials" in answer.get_json()["detail"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_public_paths_need_no_credentials(client):
    assert client.get("/healthz").status_code == 200


def test_the_bootstrap_admin_creates_a_viewer_key_shown_once_and_stored_hashed(client, store):
    answer = client.post("/api/v1/admin/keys", json={"name": "reading-room", "role": "viewer"}, headers=as_admin())
    assert answer.status_code == 201
    body = answer.get_json()
    assert (body["name"], body["role"]) == ("reading-room", "viewer")
    assert re.fullmatch(r"tsk_[A-Za-z0-9_-]{43}", body["key"])
    everything = b"".join(k + v for k, v in store.hgetall(KEYS_HASH).items())
    assert body["key"].encode() not in everything and body["key"][4:].encode() not in everything
    assert BOOTSTRAP.encode() not in b"".join(store.keys("*")) + everything
    listed = client.get("/api/v1/admin/keys", headers=as_admin()).get_json()["keys"]
    assert [(entry["name"], entry["role"]) for entry in listed] == [("reading-room", "viewer")]
    assert set(listed[0]) == {"name", "role", "created"}
    again = client.post("/api/v1/admin/keys", json={"name": "reading-room", "role": "admin"}, headers=as_admin())
    assert again.status_code == 409 and "existing key named 'reading-room'" in again.get_json()["detail"]


@pytest.mark.parametrize("body, found", [({"name": "x"}, "found the fields"), ({"name": "x", "role": "root"}, "'root'"),
                                         ({"name": "a b", "role": "viewer"}, "key name"), ([1], "found list")])
def test_bad_key_requests_are_400_saying_what_was_expected(client, body, found):
    answer = client.post("/api/v1/admin/keys", json=body, headers=as_admin())
    assert answer.status_code == 400 and found in answer.get_json()["detail"]


def test_a_viewer_key_works_on_viewer_routes_and_gets_403_on_admin_routes(client):
    key = new_key(client)
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert client.get("/api/v1/ping", headers=headers).get_json() == {"caller": "reading-room", "role": "viewer"}
    for method, path in [("post", "/api/v1/admin/reindex"), ("get", "/api/v1/admin/keys"),
                         ("post", "/api/v1/admin/keys"), ("delete", "/api/v1/admin/keys/reading-room")]:
        answer = getattr(client, method)(path, headers={"X-API-Key": key}, json={"name": "n", "role": "admin"})
        assert answer.status_code == 403 and answer.mimetype == PROBLEM, path
        assert answer.get_json()["detail"] == "admin role required; found viewer"
    assert client.post("/api/v1/admin/reindex", headers=as_admin()).status_code == 202


def test_a_deleted_key_is_refused(client):
    key = new_key(client)
    assert client.delete("/api/v1/admin/keys/reading-room", headers=as_admin()).status_code == 204
    answer = client.get("/api/v1/ping", headers={"X-API-Key": key})
    assert answer.status_code == 401 and "unknown API key" in answer.get_json()["detail"]
    assert client.delete("/api/v1/admin/keys/reading-room", headers=as_admin()).status_code == 404


@pytest.fixture
def mid_minute(monkeypatch):
    """Pins the limiter's clock to the middle of a minute: a window turning over mid-test would reset counts."""
    class Clock:
        monotonic = staticmethod(limits.time.monotonic)

        @staticmethod
        def time() -> float:
            return 1_800_000_030.0

    monkeypatch.setattr(limits, "time", Clock)


def test_the_rate_limit_answers_429_with_retry_after_per_caller(tmp_path, store, mid_minute):
    client = build_app(tmp_path, store, store, rate=3).test_client()
    key = new_key(client)  # the admin's first request of the minute
    answers = [client.get("/api/v1/ping", headers={"X-API-Key": key}) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].mimetype == PROBLEM and "at most 3 requests a minute" in answers[-1].get_json()["detail"]
    assert answers[-1].headers["Retry-After"] == "30"
    assert client.get("/api/v1/ping", headers=as_admin()).status_code == 200  # the admin has her own count
    assert client.get("/healthz").status_code == 200  # probes are never throttled


def test_an_address_that_keeps_failing_authentication_is_throttled(tmp_path, store, mid_minute):
    client = build_app(tmp_path, store, store, rate=3).test_client()
    codes = [client.get("/api/v1/ping", headers={"X-API-Key": "tsk_guess"}).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_without_redis_the_rate_limit_lets_requests_through_quickly(tmp_path, store, free_port):
    # Only the first request pays the client's connection attempts: the limiter then leaves Redis alone.
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2,
                       retry=Retry(NoBackoff(), 1))
    client = build_app(tmp_path, down, store, rate=1).test_client()
    assert client.get("/api/v1/ping", headers=as_admin()).status_code == 200
    started = time.monotonic()
    assert [client.get("/api/v1/ping", headers=as_admin()).status_code for _ in range(5)] == [200] * 5
    assert time.monotonic() - started < 1.0


def test_an_oversized_body_is_a_413_problem(client):
    answer = client.post("/api/v1/echo", data=b"x" * 4096, headers=as_admin())
    assert answer.status_code == 413 and answer.mimetype == PROBLEM
    assert "at most 2048 bytes" in answer.get_json()["detail"]
    assert client.post("/api/v1/echo", data=b"x" * 1000, headers=as_admin()).get_json() == {"size": 1000}


def test_cors_allows_only_the_listed_origins(client):
    allowed = client.get("/api/v1/ping", headers={**as_admin(), "Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN and "Origin" in allowed.headers["Vary"]
    other = client.get("/api/v1/ping", headers={**as_admin(), "Origin": "https://evil.example"})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_a_preflight_needs_no_credentials_and_names_methods_and_headers(client):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    answer = client.options("/api/v1/echo", headers={**preflight, "Origin": ALLOWED_ORIGIN})
    assert answer.status_code == 204 and answer.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert answer.headers["Access-Control-Allow-Headers"] == "Authorization, X-API-Key, Content-Type"
    refused = client.options("/api/v1/echo", headers={**preflight, "Origin": "https://evil.example"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize("path, headers", [("/api/v1/ping", as_admin()), ("/api/v1/ping", {}), ("/healthz", {})])
def test_security_headers_on_every_answer_and_no_store_under_api(client, path, headers):
    answer = client.get(path, headers=headers)
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Content-Security-Policy"] == ("default-src 'self'; img-src 'self' data: blob:; "
                                                         "object-src 'none'; frame-ancestors 'none'")
    assert (answer.headers.get("Cache-Control") == "no-store") is path.startswith("/api/")


def test_the_audit_has_a_line_per_query_and_a_security_alert_without_secrets(client, tmp_path):
    key = new_key(client)
    for _ in range(2):
        assert client.get("/api/v1/ping", headers={"X-API-Key": key}).status_code == 200
    guessed, jwt_like = "tsk_" + "g" * 43, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    assert client.get("/api/v1/ping", headers={"X-API-Key": guessed}).status_code == 401
    assert client.get("/api/v1/ping", headers={"Authorization": f"Bearer {jwt_like}"}).status_code == 401
    assert client.post("/api/v1/admin/reindex", headers={"X-API-Key": key}).status_code == 403
    lines = audit_lines(tmp_path)
    queries = [line for line in lines if line["event_code"]["code"] == "110112"]
    assert len(queries) == 2
    assert queries[0]["event_code"] == {"code": "110112", "scheme": "DCM", "meaning": "Query"}
    assert queries[0]["actor"] == {"name": "reading-room", "role": "viewer", "method": "api-key"}
    assert queries[0]["returned_studies"] == ["1.2.3.4"] and queries[0]["outcome"] == "success"
    assert queries[0]["source_ip"] == "127.0.0.1" and queries[0]["time"].endswith("Z")
    alerts = [line for line in lines if line["event_code"]["code"] == "110113"]
    assert [(a["event"], a.get("event_type_code", {}).get("code")) for a in alerts] == [
        ("api key created", "110137"), ("authentication refused", "110122"),
        ("authentication refused", "110122"), ("access refused", "110132")]
    assert alerts[1]["outcome"] == "failure" and alerts[1]["actor"] is None
    assert "unknown API key" in alerts[1]["query"]["reason"]
    text = (tmp_path / "audit" / "audit.jsonl").read_text()
    assert key not in text and guessed not in text and BOOTSTRAP not in text and "c2lnbmF0dXJl" not in text


def test_disabled_authentication_serves_everyone_as_anonymous_admin(tmp_path, store):
    client = build_app(tmp_path, store, store, disabled=True).test_client()
    assert client.get("/api/v1/ping").get_json() == {"caller": "anonymous", "role": "admin"}


def test_limits_installed_before_auth_still_count_per_caller(tmp_path, store, mid_minute):
    app = Flask("limits-first")
    register_problem_handlers(app)
    keys = ApiKeyStore(store, bootstrap_admin_key=BOOTSTRAP)
    install_limits(app, store, 2, [], 2048)
    install_auth(app, Authenticator(keys, None, disabled=False))
    app.get("/api/v1/ping")(lambda: {"caller": g.caller.name})
    client = app.test_client()
    assert [client.get("/api/v1/ping", headers=as_admin()).status_code for _ in range(3)] == [200, 200, 429]
    assert "caller 'bootstrap-admin'" in client.get("/api/v1/ping", headers=as_admin()).get_json()["detail"]
