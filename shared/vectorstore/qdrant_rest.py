"""The read path to a Qdrant server (or `tumorsearch vectorstore`) as plain JSON over keep-alive
connections: search, retrieve, and a point with its neighbours in one batch request.

Why not qdrant-client for these: it builds and validates pydantic models for every request and every hit,
which was most of the gateway's own CPU time per similar-tumour query (`bench query`, docs/gateway.md),
and httpx's request machinery was most of the rest.
The requests are the documented REST API (`POST …/points/query`, `…/points/query/batch`, `…/points`);
everything else still goes through qdrant-client.
"""

from __future__ import annotations

import functools
import http.client
import json
import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

from shared.vectorstore import filters
from shared.vectorstore.base import Filter, Hit, PointRecord

EXACT = {"exact": True}


class RestError(RuntimeError):
    """The store answered with an error status; `status` is the HTTP code (404: no such collection or point)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"vector store answered {status}: {text}")
        self.status = status


class RestPoints:
    """One keep-alive connection per thread (the gateway's request threads), from the standard library:
    httpx's request machinery cost about 0.5 ms of the gateway's 2 ms of CPU per similar-tumour query."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"vector store URL: expected http(s)://host[:port], found {url!r}")
        secure = parts.scheme == "https"
        self._connect = functools.partial(
            http.client.HTTPSConnection if secure else http.client.HTTPConnection, parts.hostname,
            parts.port or (443 if secure else 80), timeout=timeout_s)
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", **({"api-key": api_key} if api_key else {})}
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._opened_lock = threading.Lock()

    def close(self) -> None:
        with self._opened_lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        for attempt in (1, 2):  # a kept-alive connection the server has closed fails once; these are reads
            connection = self._connection()
            try:
                connection.request("POST", self._prefix + path, body=data, headers=self._headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError,
                    ConnectionResetError):
                connection.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RestError(response.status, _error_text(payload, response.reason))
        return json.loads(payload)["result"]

    def search(self, collection: str, vector: list[float], vector_name: str, limit: int,
               flt: Filter | None) -> list[dict[str, Any]]:
        body = _query(vector, vector_name, limit, flt)
        return self._post(f"/collections/{collection}/points/query", body)["points"]

    def retrieve(self, collection: str, ids: Sequence[str], vector_name: str) -> list[dict[str, Any]]:
        body = {"ids": list(ids), "with_payload": True, "with_vector": [vector_name]}
        return self._post(f"/collections/{collection}/points", body)

    def point_and_neighbours(self, collection: str, point_id: str, vector_name: str, limit: int,
                             flt: Filter | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The point (payload, vector) and the nearest points to its stored vector, in one request. The point
        itself may or may not be among the neighbours (Qdrant leaves query ids out; callers drop it)."""
        own = {"filter": {"must": [{"has_id": [point_id]}]}, "limit": 1, "with_payload": True,
               "with_vector": [vector_name]}
        results = self._post(f"/collections/{collection}/points/query/batch",
                             {"searches": [own, _query(point_id, vector_name, limit, flt)]})
        points = results[0]["points"]
        return (points[0] if points else None), results[1]["points"]


def _query(query: list[float] | str, vector_name: str, limit: int, flt: Filter | None) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "using": vector_name, "limit": limit, "with_payload": True,
                            "with_vector": False, "params": EXACT}
    rest_filter = to_rest(flt)
    if rest_filter is not None:
        body["filter"] = rest_filter
    return body


def to_rest(flt: Filter | None) -> dict[str, Any] | None:
    """The filter as Qdrant's JSON, through the same checks and translation as qdrant-client's models."""
    model = filters.to_qdrant(flt)
    return None if model is None else model.model_dump(mode="json", exclude_none=True)


def hits(points: list[dict[str, Any]], distance: str) -> list[Hit]:
    return filters.ranked(Hit(filters.point_id(p["id"]), filters.similarity(p["score"], distance),
                              p.get("payload") or {}) for p in points)


def record(point: dict[str, Any], vector_name: str) -> PointRecord:
    vector = point.get("vector")
    if isinstance(vector, dict):
        vector = vector.get(vector_name)
    if not isinstance(vector, list):
        raise ValueError(f"point {point.get('id')!r}: expected its vector {vector_name!r}, found none")
    return PointRecord(filters.point_id(point["id"]), vector, point.get("payload") or {})


def _error_text(payload: bytes, reason: str) -> str:
    try:
        return str(json.loads(payload).get("status", {}).get("error", ""))[:300] or reason
    except (ValueError, AttributeError):
        return payload[:300].decode("utf-8", "replace") or reason
