"""The facade over qdrant-client: a Qdrant server in production, qdrant-client's local mode in tests.

Both modes make the same calls, so the tests that run against local mode exercise the server path.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from qdrant_client import QdrantClient, models

from shared.vectorstore import filters, qdrant_rest
from shared.vectorstore.base import CollectionMissing, CollectionSpec, Filter, Hit, PointRecord, VectorStore
from shared.vectorstore.qdrant_rest import RestPoints

# Local mode says, once per call site, that it ignores search params and payload indexes. We send them
# anyway (a server needs them) and know local mode searches exactly; the notice is noise in our logs.
warnings.filterwarnings("ignore", message="Local mode performs exact", category=UserWarning)
warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant", category=UserWarning)

_DISTANCE = {"Cosine": models.Distance.COSINE, "Euclid": models.Distance.EUCLID, "Dot": models.Distance.DOT}
_INDEX = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
          "float": models.PayloadSchemaType.FLOAT}
_EXACT = models.SearchParams(exact=True)
KEEP_ALIVE = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=30.0)


@dataclass(frozen=True)
class _Shape:
    vector_name: str
    size: int
    distance: str


class QdrantStore(VectorStore):
    """Use `QdrantStore.server(url)` or `QdrantStore.local(path)`; the constructor takes a ready client."""

    def __init__(self, client: QdrantClient, where: str, rest: RestPoints | None = None) -> None:
        self._client = client
        self._where = where
        self._rest = rest  # the JSON read path of a server (qdrant_rest.py); None in local mode
        self._shapes: dict[str, _Shape] = {}

    @classmethod
    def server(cls, url: str, api_key: str | None = None, timeout_s: float = 10.0) -> QdrantStore:
        # Keep-alive always: qdrant-client turns it off for 127.0.0.1/localhost, which costs a TCP connect,
        # accept and close on both sides per request (a third of the gateway's CPU per query in `bench query`).
        client = QdrantClient(url=url, api_key=api_key, timeout=max(1, round(timeout_s)), limits=KEEP_ALIVE)
        return cls(client, f"Qdrant at {url}", RestPoints(url, api_key, timeout_s))

    @classmethod
    def local(cls, path: str) -> QdrantStore:
        """qdrant-client's local mode (":memory:" or a folder): slow at scale and single-process; tests only."""
        client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=str(path))
        return cls(client, f"qdrant-client local mode at {path}")

    def __repr__(self) -> str:
        return f"QdrantStore({self._where})"

    # -- collections ---------------------------------------------------------------------------------

    def ensure_collection(self, spec: CollectionSpec) -> None:
        filters.check_spec(spec)
        if not self._client.collection_exists(spec.name):
            try:
                self._client.create_collection(spec.name, vectors_config={
                    spec.vector_name: models.VectorParams(size=spec.size, distance=_DISTANCE[spec.distance])})
            except Exception:
                # Another replica may have created it between our check and our create.
                if not self._client.collection_exists(spec.name):
                    raise
        shape = self._shape(spec.name)
        filters.refuse_mismatch(spec, shape.vector_name, shape.size, shape.distance)
        for key, kind in spec.indexes.items():  # idempotent on a server: a new index is simply added
            self._client.create_payload_index(spec.name, key, _INDEX[kind], wait=True)

    def collection_exists(self, name: str) -> bool:
        return self._client.collection_exists(filters.check_collection_name(name))

    def _shape(self, name: str) -> _Shape:
        if name in self._shapes:
            return self._shapes[name]
        with self._missing_as(name):
            vectors = self._client.get_collection(name).config.params.vectors
        if not isinstance(vectors, dict) or len(vectors) != 1:
            raise ValueError(f"collection {name!r}: expected exactly one named vector, found {vectors!r}")
        (vector_name, params), = vectors.items()
        shape = _Shape(vector_name, params.size, _distance_name(params.distance))
        self._shapes[name] = shape
        return shape

    @contextmanager
    def _missing_as(self, name: str) -> Iterator[None]:
        """Local mode raises ValueError, a server a 404: whatever the error, a missing collection is named so."""
        try:
            yield
        except CollectionMissing:
            raise
        except Exception as exc:
            if not self._client.collection_exists(name):
                self._shapes.pop(name, None)
                raise CollectionMissing(f"collection {name!r} does not exist in {self._where}") from exc
            raise

    # -- points --------------------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[PointRecord]) -> None:
        if not points:
            return
        shape = self._shape(collection)
        structs = [models.PointStruct(
            id=filters.point_id(p.id),
            vector={shape.vector_name: filters.vector_list(p.vector, shape.size, f"vector of point {p.id}")},
            payload=filters.json_payload(p.payload)) for p in points]
        with self._missing_as(collection):
            self._client.upsert(collection, structs, wait=True)

    def delete(self, collection: str, flt: Filter) -> None:
        filters.require_conditions(flt, f"delete from {collection!r}")
        selector = models.FilterSelector(filter=filters.to_qdrant(flt))
        with self._missing_as(collection):
            self._client.delete(collection, points_selector=selector, wait=True)

    def search(self, collection: str, vector: Sequence[float], limit: int,
               flt: Filter | None = None) -> list[Hit]:
        shape = self._shape(collection)
        query = filters.vector_list(vector, shape.size, "query vector")
        if self._rest is not None:
            with self._missing_as(collection):
                found = self._rest.search(collection, query, shape.vector_name, limit, flt)
            return qdrant_rest.hits(found, shape.distance)
        with self._missing_as(collection):
            points = self._client.query_points(
                collection, query=query, using=shape.vector_name, limit=limit, query_filter=filters.to_qdrant(flt),
                with_payload=True, with_vectors=False, search_params=_EXACT).points
        return filters.ranked(Hit(str(p.id), filters.similarity(p.score, shape.distance), p.payload or {})
                              for p in points)

    def retrieve(self, collection: str, ids: Sequence[str]) -> list[PointRecord]:
        shape = self._shape(collection)
        asked = [filters.point_id(i) for i in ids]
        if not asked:
            return []
        if self._rest is not None:
            with self._missing_as(collection):
                found = self._rest.retrieve(collection, asked, shape.vector_name)
            return filters.in_asked_order((qdrant_rest.record(p, shape.vector_name) for p in found), asked)
        with self._missing_as(collection):
            records = self._client.retrieve(collection, asked, with_payload=True, with_vectors=[shape.vector_name])
        return filters.in_asked_order(
            (PointRecord(str(r.id), list(r.vector[shape.vector_name]), r.payload or {}) for r in records), asked)

    def point_and_neighbours(self, collection: str, point_id: str, limit: int,
                             flt: Filter | None = None) -> tuple[PointRecord | None, list[Hit]]:
        if self._rest is None:
            return super().point_and_neighbours(collection, point_id, limit, flt)
        shape = self._shape(collection)
        try:
            own, near = self._rest.point_and_neighbours(collection, filters.point_id(point_id), shape.vector_name,
                                                        limit, flt)
        except qdrant_rest.RestError as error:
            if error.status not in (400, 404):
                raise
            # No such point (Qdrant refuses a query by a missing id) or no collection: the two-request path
            # tells which, with the facade's own errors.
            return super().point_and_neighbours(collection, point_id, limit, flt)
        if own is None:
            return None, []
        return qdrant_rest.record(own, shape.vector_name), qdrant_rest.hits(near, shape.distance)

    def count(self, collection: str, flt: Filter | None = None) -> int:
        with self._missing_as(collection):
            return self._client.count(collection, count_filter=filters.to_qdrant(flt), exact=True).count

    def ping(self) -> None:
        self._client.get_collections()

    def close(self) -> None:
        self._client.close()
        if self._rest is not None:
            self._rest.close()


def _distance_name(distance: models.Distance) -> str:
    for name, value in _DISTANCE.items():
        if value == distance:
            return name
    return str(distance)
