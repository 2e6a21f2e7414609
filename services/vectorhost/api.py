"""The embedded vector store behind the subset of Qdrant's REST API that qdrant-client uses for
TumorSearch, so the worker and the gateway run the same client code on one machine as against a
Qdrant server in production. One lock serialises access: the engine is single-process and writes
are rare (one per study)."""

from __future__ import annotations

import dataclasses

import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from services.vectorhost import qdrant_json as qj
from services.vectorhost.optimizer import BackgroundOptimizer
from shared.vectorstore.base import CollectionMissing

api = Blueprint("qdrant", __name__)
SERVER_TITLE = "tumorsearch embedded vector store (qdrant-edge)"
# Every update here is applied and flushed before the answer: Qdrant's "completed" (as with wait=true).
UPDATE_DONE = {"operation_id": 0, "status": "completed"}


def create_app(store, client_version: str, optimize_quiet_s: float = 5.0) -> Flask:
    """The app and, in `app.extensions["optimizer"]`, its background segment optimizer (not started)."""
    app = Flask("tumorsearch.vectorhost")
    app.json.sort_keys = False  # Flask sorts every answer's keys by default: CPU per query for nothing
    app.extensions["store"] = store
    app.extensions["lock"] = lock = threading.RLock()
    app.extensions["version"] = client_version
    app.extensions["optimizer"] = BackgroundOptimizer(store.optimize, lock, optimize_quiet_s)
    app.register_blueprint(api)
    app.register_error_handler(Exception, _error)
    return app


def _store():
    return current_app.extensions["store"]


def _written(name: str) -> None:
    current_app.extensions["optimizer"].written(name)


def _ok(result: Any, started: float):
    return jsonify(result=result, status="ok", time=time.perf_counter() - started)


def _error(error: Exception):
    if isinstance(error, HTTPException):
        status, text = error.code or 500, error.description
    elif isinstance(error, CollectionMissing):
        status, text = 404, str(error)
    elif isinstance(error, (qj.Unsupported, ValueError, KeyError, TypeError)):
        status, text = 400, f"{type(error).__name__}: {error}"
    else:
        current_app.logger.exception("vector store request failed")
        status, text = 500, f"{type(error).__name__}: {error}"
    response = jsonify(status={"error": text}, time=0.0)
    response.status_code = status
    return response


@api.get("/")
def root():
    # qdrant-client compares this version with its own before talking to a server.
    return jsonify(title=SERVER_TITLE, version=current_app.extensions["version"])


@api.get("/healthz")
@api.get("/readyz")
@api.get("/livez")
def health():
    return "healthz check passed"


@api.get("/collections")
def list_collections():
    started = time.perf_counter()
    with current_app.extensions["lock"]:
        return _ok({"collections": [{"name": n} for n in _store().collection_names()]}, started)


@api.get("/collections/<name>/exists")
def exists(name: str):
    started = time.perf_counter()
    with current_app.extensions["lock"]:
        return _ok({"exists": _store().collection_exists(name)}, started)


@api.get("/collections/<name>")
def get_collection(name: str):
    started = time.perf_counter()
    with current_app.extensions["lock"]:
        spec = _store().spec(name)
        optimizing = current_app.extensions["optimizer"].pending(name)
        return _ok(qj.collection_info(spec, _store().count(name), optimizing), started)


@api.put("/collections/<name>")
def create_collection(name: str):
    started = time.perf_counter()
    with current_app.extensions["lock"]:
        _store().ensure_collection(qj.spec_from_create(name, request.get_json(force=True)))
    _written(name)
    return _ok(True, started)


INDEX_KINDS = ("keyword", "integer", "float")


@api.put("/collections/<name>/index")
def create_index(name: str):
    """Build the payload index in the engine: without it a filtered search over 100k points scans every
    payload (0.4-0.6 s instead of 6-19 ms, measured by `bench query`)."""
    started = time.perf_counter()
    body = request.get_json(force=True)
    field, kind = body.get("field_name"), body.get("field_schema")
    kind = kind.get("type") if isinstance(kind, dict) else kind
    if not isinstance(field, str) or kind not in INDEX_KINDS:
        raise BadRequest(f"index: expected field_name and field_schema in {INDEX_KINDS}, found {field!r}, {kind!r}")
    with current_app.extensions["lock"]:
        spec = _store().spec(name)
        _store().ensure_collection(dataclasses.replace(spec, indexes={**spec.indexes, field: kind}))
    _written(name)
    return _ok(UPDATE_DONE, started)


@api.put("/collections/<name>/points")
def upsert(name: str):
    started = time.perf_counter()
    with current_app.extensions["lock"]:
        spec = _store().spec(name)
        _store().upsert(name, qj.points_from_upsert(request.get_json(force=True), spec))
    _written(name)
    return _ok(UPDATE_DONE, started)


@api.post("/collections/<name>/points/delete")
def delete(name: str):
    started = time.perf_counter()
    body = request.get_json(force=True)
    if "filter" not in body:
        raise qj.Unsupported("delete: expected a `filter` selector (delete by filter)")
    with current_app.extensions["lock"]:
        _store().delete(name, qj.filter_from_json(body["filter"]) or qj.Filter())
    _written(name)
    return _ok(UPDATE_DONE, started)


@api.post("/collections/<name>/points/query")
def query(name: str):
    started = time.perf_counter()
    body = request.get_json(force=True)
    with current_app.extensions["lock"]:
        return _ok(_answer_query(name, body), started)


@api.post("/collections/<name>/points/query/batch")
def query_batch(name: str):
    """Several queries in one request (the gateway asks for a tumour and its neighbours this way)."""
    started = time.perf_counter()
    searches = request.get_json(force=True).get("searches")
    if not isinstance(searches, list):
        raise BadRequest("query batch: expected a `searches` list")
    with current_app.extensions["lock"]:
        return _ok([_answer_query(name, body) for body in searches], started)


def _answer_query(name: str, body: dict) -> dict:
    """A vector query, a query by the id of a stored point (nearest to its vector), or no query with a
    filter on ids only (those points, as Qdrant answers a query without `query`)."""
    spec = _store().spec(name)
    limit = int(body.get("limit", 10))
    ids = qj.ids_only_filter(body)
    if ids is not None:
        records = _store().retrieve(name, ids)[:limit]
        return qj.records_as_scored(records, spec, bool(body.get("with_vector")))
    vector = qj.query_vector(body, spec, lambda point_id: _stored_vector(name, point_id))
    hits = _store().search(name, vector, limit, qj.filter_from_json(body.get("filter")))
    return qj.scored_json(hits)


def _stored_vector(name: str, point_id: str) -> list[float]:
    found = _store().retrieve(name, [point_id])
    if not found:
        raise NotFound(f"No point with id {point_id} found")
    return list(found[0].vector)


@api.post("/collections/<name>/points")
def retrieve(name: str):
    started = time.perf_counter()
    body = request.get_json(force=True)
    with current_app.extensions["lock"]:
        spec = _store().spec(name)
        records = _store().retrieve(name, [str(i) for i in body.get("ids", [])])
    with_vector = bool(body.get("with_vector"))
    return _ok([qj.record_json(r, spec, with_vector) for r in records], started)


@api.post("/collections/<name>/points/count")
def count(name: str):
    started = time.perf_counter()
    body = request.get_json(silent=True) or {}
    with current_app.extensions["lock"]:
        return _ok({"count": _store().count(name, qj.filter_from_json(body.get("filter")))}, started)
