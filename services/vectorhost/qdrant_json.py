"""Qdrant REST JSON <-> the vector store facade's types, for the subset TumorSearch uses.

Anything outside that subset is refused with a message naming what is supported, rather than answered
approximately: a filter silently ignored would return wrong similar cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from shared.vectorstore.base import CollectionSpec, Condition, Filter, Hit, Match, MatchAny, PointRecord, Range


class Unsupported(ValueError):
    """A request uses a Qdrant feature the embedded store does not serve."""


def spec_from_create(name: str, body: dict[str, Any]) -> CollectionSpec:
    vectors = body.get("vectors")
    if not isinstance(vectors, dict) or len(vectors) != 1 or "size" in vectors:
        raise Unsupported("collection: expected exactly one named vector {name: {size, distance}}")
    (vector_name, params), = vectors.items()
    return CollectionSpec(name=name, vector_name=vector_name, size=int(params["size"]),
                          distance=params.get("distance", "Cosine"))


def collection_info(spec: CollectionSpec, points: int, optimizing: bool = False) -> dict[str, Any]:
    """The smallest CollectionInfo qdrant-client accepts, describing what the store really holds.
    "yellow" while segment optimisation is pending or running, as a Qdrant server says."""
    return {
        "status": "yellow" if optimizing else "green", "optimizer_status": "ok", "segments_count": 1,
        "points_count": points, "indexed_vectors_count": 0, "payload_schema": {},
        "config": {
            "params": {"vectors": {spec.vector_name: {"size": spec.size, "distance": spec.distance}}},
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
            "optimizer_config": {"default_segment_number": 1, "flush_interval_sec": 5},
        },
    }


def filter_from_json(data: dict[str, Any] | None) -> Filter | None:
    if not data:
        return None
    unknown = set(data) - {"must", "must_not"}
    if unknown - {"should", "min_should"} or data.get("should") or data.get("min_should"):
        raise Unsupported(f"filter: expected only `must` and `must_not`, found {sorted(data)}")
    return Filter(must=tuple(_condition(c) for c in _as_list(data.get("must"))),
                  must_not=tuple(_condition(c) for c in _as_list(data.get("must_not"))))


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _condition(data: dict[str, Any]) -> Condition:
    key = data.get("key")
    if not isinstance(key, str):
        raise Unsupported("filter condition: expected a field condition with `key`, found another kind")
    if "match" in data and "value" in data["match"]:
        return Match(key, data["match"]["value"])
    if "match" in data and "any" in data["match"]:
        return MatchAny(key, tuple(data["match"]["any"]))
    if "range" in data:
        bounds = data["range"]
        if bounds.get("gt") is not None or bounds.get("lt") is not None:
            raise Unsupported("range: expected inclusive bounds gte/lte only, found gt or lt")
        return Range(key, gte=bounds.get("gte"), lte=bounds.get("lte"))
    raise Unsupported(f"filter condition on {key!r}: expected match.value, match.any or range")


def points_from_upsert(body: dict[str, Any], spec: CollectionSpec) -> list[PointRecord]:
    if "points" not in body:
        raise Unsupported("upsert: expected a `points` list (the batch form is not served)")
    records = []
    for point in body["points"]:
        vector = point.get("vector")
        if isinstance(vector, dict):
            vector = vector.get(spec.vector_name)
        if not isinstance(vector, list) or len(vector) != spec.size:
            raise Unsupported(f"point vector: expected {spec.size} numbers under {spec.vector_name!r}")
        records.append(PointRecord(id=str(point["id"]), vector=vector, payload=point.get("payload") or {}))
    return records


def query_vector(body: dict[str, Any], spec: CollectionSpec,
                 stored_vector: Callable[[str], list[float]]) -> list[float]:
    """The query's vector: given as numbers, or the stored vector of the point whose id is given."""
    query = body.get("query")
    if isinstance(query, dict) and "nearest" in query:
        query = query["nearest"]
    if isinstance(query, str):
        try:
            query = stored_vector(str(uuid.UUID(query)))
        except ValueError:
            raise Unsupported(f"query: expected a vector or a point id (UUID), found {query[:40]!r}") from None
    using = body.get("using") or spec.vector_name
    if using != spec.vector_name or not isinstance(query, list) or len(query) != spec.size:
        raise Unsupported(f"query: expected a plain vector of {spec.size} numbers using {spec.vector_name!r}")
    return query


def ids_only_filter(body: dict[str, Any]) -> list[str] | None:
    """The ids of a query without `query` whose filter is one `has_id` condition; None for any other query."""
    flt = body.get("filter")
    if body.get("query") is not None or not isinstance(flt, dict):
        return None
    must = _as_list(flt.get("must"))
    if set(flt) - {"must"} or len(must) != 1 or set(must[0]) != {"has_id"}:
        raise Unsupported("query without `query`: expected a filter of one has_id condition (the only form served)")
    return [str(uuid.UUID(str(i))) for i in must[0]["has_id"]]


def records_as_scored(records: list[PointRecord], spec: CollectionSpec, with_vector: bool) -> dict[str, Any]:
    return {"points": [{**record_json(r, spec, with_vector), "version": 0, "score": 0.0} for r in records]}


def scored_json(hits: list[Hit]) -> dict[str, Any]:
    return {"points": [{"id": h.id, "version": 0, "score": h.score, "payload": h.payload} for h in hits]}


def record_json(record: PointRecord, spec: CollectionSpec, with_vector: bool) -> dict[str, Any]:
    vector = {spec.vector_name: list(record.vector)} if with_vector else None
    return {"id": record.id, "payload": record.payload, "vector": vector}
