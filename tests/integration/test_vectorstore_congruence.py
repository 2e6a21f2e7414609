"""The two engines behind the facade answer the same sequence of calls identically.

qdrant-client's local mode stands in for a Qdrant server (none can run here): it is the server path's
client code, so agreement with the embedded engine is agreement of the two production paths.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import numpy as np
import pytest

from shared.vectorstore import CollectionMissing, CollectionSpec, EdgeStore, Filter, Match, MatchAny, PointRecord, \
    QdrantStore, Range, StoreLocked, VectorStore
from shared.vectorstore.filters import json_payload

# local mode's notices that it ignores search params and payload indexes (a server needs both)
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Local mode performs exact"),
              pytest.mark.filterwarnings("ignore:Payload indexes have no effect")]

DIM = 8
TYPES = ("glioma", "meningioma", "pituitary")
FILTERS = [
    None,
    Filter(must=(Match("tumor_type", "glioma"),)),
    Filter(must=(MatchAny("fold", (1, 3)),)),
    Filter(must=(MatchAny("hemisphere", ("left", "midline")),)),
    Filter(must=(Range("size_mm3", gte=100.0, lte=900.0),)),
    Filter(must_not=(Match("fold", 5),)),
    Filter(must=(Match("tumor_type", "meningioma"), Range("size_mm3", lte=500.0)), must_not=(Match("fold", 2),)),
    Filter(must=(Match("size_mm3", 250.0),)),
    Filter(must=(Match("tumor_type", "no such type"),)),
]


def _spec(distance: str = "Cosine", size: int = DIM) -> CollectionSpec:
    return CollectionSpec("tumors__test", "roi", size, distance,  # type: ignore[arg-type]
                          indexes={"tumor_type": "keyword", "fold": "integer", "size_mm3": "float"})


def _points(n: int, seed: int, study_prefix: str = "s") -> list[PointRecord]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return [PointRecord(str(uuid.UUID(int=int(rng.integers(1, 2**63)) << 64 | i)), vectors[i], {
        "study_instance_uid": f"{study_prefix}{i % 7}",
        "tumor_type": TYPES[i % 3],
        "size_mm3": 250.0 if i % 11 == 0 else float(rng.uniform(0, 1000)),
        "fold": int(i % 5 + 1),
        "hemisphere": ("left", "right", "midline")[i % 3 - (i % 2)],
        "centroid_mm": [float(i), -1.5, 2.25],
    }) for i in range(n)]


def _scenario(store: VectorStore, distance: str) -> list:
    """Every observable answer of one sequence of calls, in order."""
    seen: list = [store.collection_exists("tumors__test")]
    for call in (lambda: store.count("tumors__test"), lambda: store.search("tumors__test", [0.0] * DIM, 3),
                 lambda: store.retrieve("tumors__test", [str(uuid.uuid4())]),
                 lambda: store.upsert("tumors__test", _points(1, 0))):
        with pytest.raises(CollectionMissing):
            call()
    store.ensure_collection(_spec(distance))
    store.ensure_collection(_spec(distance))  # idempotent
    for other in (_spec(distance, size=DIM + 1), _spec("Dot" if distance != "Dot" else "Cosine")):
        with pytest.raises(ValueError, match="exists with vector"):
            store.ensure_collection(other)
    points = _points(240, seed=1)
    for start in range(0, len(points), 100):
        store.upsert("tumors__test", points[start:start + 100])
    store.upsert("tumors__test", [PointRecord(p.id, p.vector, {**p.payload, "tumor_type": "pituitary"})
                                  for p in points[:20]])  # replace by id
    seen.append(store.collection_exists("tumors__test"))
    queries = np.random.default_rng(2).standard_normal((4, DIM)).astype(np.float32)
    seen += _queries(store, queries)
    store.delete("tumors__test", Filter(must=(Match("study_instance_uid", "s3"),)))
    store.delete("tumors__test", Filter(must=(Match("tumor_type", "glioma"),), must_not=(MatchAny("fold", (1, 2)),)))
    seen += _queries(store, queries)
    asked = [points[i].id for i in (17, 3, 200, 0, 45)] + [str(uuid.uuid4())]
    seen.append(("retrieve", [(r.id, np.round(r.vector, 5).tolist(), r.payload)
                              for r in store.retrieve("tumors__test", asked)]))
    return seen


def _queries(store: VectorStore, queries: np.ndarray) -> list:
    seen: list = []
    for flt in FILTERS:
        seen.append(("count", flt, store.count("tumors__test", flt)))
        for query in queries:
            hits = store.search("tumors__test", query, 7, flt)
            seen.append(("search", flt, [(h.id, round(h.score, 5), h.payload) for h in hits]))
    return seen


def _assert_same(left: list, right: list) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right):
        if isinstance(a, tuple) and a[0] == "search":
            assert [(i, p) for i, _, p in a[2]] == [(i, p) for i, _, p in b[2]], a[1]
            assert np.allclose([s for _, s, _ in a[2]], [s for _, s, _ in b[2]], atol=1e-5), a[1]
        elif isinstance(a, tuple) and a[0] == "retrieve":
            assert [(i, p) for i, _, p in a[1]] == [(i, p) for i, _, p in b[1]]
            for (_, va, _), (_, vb, _) in zip(a[1], b[1]):
                assert np.allclose(va, vb, atol=1e-5)
        else:
            assert a == b


@pytest.mark.parametrize("distance", ["Cosine", "Euclid", "Dot"])
@pytest.mark.parametrize("qdrant_where", [":memory:", "disk"])
def test_both_engines_answer_the_same(tmp_path, distance, qdrant_where):
    qdrant = QdrantStore.local(":memory:" if qdrant_where == ":memory:" else str(tmp_path / "qdrant"))
    edge = EdgeStore(tmp_path / "edge")
    try:
        expected, found = _scenario(qdrant, distance), _scenario(edge, distance)
    finally:
        qdrant.close()
        edge.close()
    assert any(isinstance(s, tuple) and s[0] == "search" and s[2] for s in expected)  # not vacuous
    _assert_same(expected, found)


def test_search_scores_say_higher_is_closer(tmp_path):
    for store in (QdrantStore.local(":memory:"), EdgeStore(tmp_path / "edge")):
        store.ensure_collection(_spec("Euclid"))
        points = _points(30, seed=4)
        store.upsert("tumors__test", points)
        hits = store.search("tumors__test", points[5].vector, 5)
        assert hits[0].id == points[5].id and hits[0].score == pytest.approx(0.0, abs=1e-5)
        assert all(h.score < 0 for h in hits[1:])
        store.close()


@pytest.mark.parametrize("engine", ["edge", "qdrant-local"])
def test_restart_keeps_the_data(tmp_path, engine):
    def open_store() -> VectorStore:
        return EdgeStore(tmp_path / "edge") if engine == "edge" else QdrantStore.local(str(tmp_path / "ql"))

    store = open_store()
    store.ensure_collection(_spec())
    points = _points(150, seed=5)
    store.upsert("tumors__test", points)
    store.delete("tumors__test", Filter(must=(Match("fold", 4),)))
    before = store.search("tumors__test", points[0].vector, 10, Filter(must_not=(Match("fold", 5),)))
    count = store.count("tumors__test")
    store.close()
    store = open_store()
    try:
        assert store.collection_exists("tumors__test")
        assert store.count("tumors__test") == count == sum(p.payload["fold"] != 4 for p in points)
        after = store.search("tumors__test", points[0].vector, 10, Filter(must_not=(Match("fold", 5),)))
        assert [(h.id, h.payload) for h in after] == [(h.id, h.payload) for h in before]
        assert np.allclose([h.score for h in after], [h.score for h in before], atol=1e-5)
        assert [r.payload for r in store.retrieve("tumors__test", [points[1].id])] == [json_payload(points[1].payload)]
        store.ensure_collection(_spec())  # reopening through ensure keeps the data too
        assert store.count("tumors__test") == count
    finally:
        store.close()


def test_a_second_process_is_told_the_store_is_held(tmp_path):
    store = EdgeStore(tmp_path / "edge")
    store.ensure_collection(_spec())
    try:
        code = ("import sys; from shared.vectorstore import EdgeStore, StoreLocked\n"
                "try:\n    EdgeStore(sys.argv[1])\nexcept StoreLocked as exc:\n    print(exc); sys.exit(3)\n")
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "edge")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert "held by another process" in result.stdout and str(tmp_path / "edge") in result.stdout
    finally:
        store.close()
    reopened = EdgeStore(tmp_path / "edge")  # released on close: the next owner gets in
    assert reopened.collection_exists("tumors__test")
    reopened.close()


def test_an_interrupted_creation_is_started_over(tmp_path):
    store = EdgeStore(tmp_path / "edge")
    store.ensure_collection(_spec())
    store.close()
    (tmp_path / "edge" / "tumors__test.json").unlink()  # as if killed before the spec (commit point) was written
    store = EdgeStore(tmp_path / "edge")
    assert not store.collection_exists("tumors__test")
    store.ensure_collection(_spec())
    store.upsert("tumors__test", _points(3, seed=6))
    assert store.count("tumors__test") == 3
    store.close()
    with pytest.raises(RuntimeError, match="found it closed"):
        store.count("tumors__test")


def test_store_locked_is_raised_for_a_held_shard(tmp_path, monkeypatch):
    from shared.vectorstore import edge_backend

    def held(_path, config=None):
        raise Exception("Service runtime error: failed to open WAL: Can't init WAL: Kind(WouldBlock)")

    store = EdgeStore(tmp_path / "edge")
    store.ensure_collection(_spec())
    store.close()
    store = EdgeStore(tmp_path / "edge")
    monkeypatch.setattr(edge_backend.qe.EdgeShard, "load", staticmethod(held))
    with pytest.raises(StoreLocked, match="held by another process"):
        store.count("tumors__test")
    store.close()
