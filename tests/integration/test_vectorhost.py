"""The embedded vector store served over Qdrant's REST API: qdrant-client (through QdrantStore.server,
the production code path) gets the same answers as the engine opened directly."""

from __future__ import annotations

import json
import random
import sys
import time
import uuid

import pytest

from shared.vectorstore.base import CollectionMissing, CollectionSpec, Filter, Match, MatchAny, PointRecord, Range
from shared.vectorstore.edge_backend import EdgeStore
from shared.vectorstore.qdrant_backend import QdrantStore
from support.ports import free_port, port_is_open
from support.processes import running

pytestmark = pytest.mark.integration

SPEC = CollectionSpec("tumors__host-test", "roi", 8, "Cosine", {"tumor_type": "keyword", "size_mm3": "float"})
TYPES = ("meningioma", "glioma", "pituitary")


def points(n: int, seed: int = 1) -> list[PointRecord]:
    rng = random.Random(seed)
    return [PointRecord(str(uuid.UUID(int=rng.getrandbits(128))), [rng.uniform(-1, 1) for _ in range(8)],
                        {"tumor_type": rng.choice(TYPES), "size_mm3": round(rng.uniform(10, 5000), 3),
                         "fold": rng.randint(1, 5)})
            for _ in range(n)]


FILTERS = [None, Filter(must=(Match("tumor_type", "glioma"),)),
           Filter(must=(MatchAny("tumor_type", ("glioma", "pituitary")), Range("size_mm3", 100, 3000)),
                  must_not=(Match("fold", 5),))]


@pytest.fixture
def host(tmp_path):
    port = free_port()
    env = {"TUMORSEARCH_HOME": str(tmp_path / "home"), "TUMORSEARCH_VECTORHOST__PORT": str(port),
           "TUMORSEARCH_LOG__FORMAT": "text", "PATH": "/usr/bin:/bin"}
    with running([sys.executable, "-m", "services.launcher.cli", "vectorstore"], tmp_path / "host.log",
                 ready=lambda: port_is_open(port), env=env, timeout=60):
        yield f"http://127.0.0.1:{port}", tmp_path / "home" / "vectors"


def test_qdrant_client_through_the_host_matches_the_engine(host, tmp_path):
    url, _ = host
    remote, direct = QdrantStore.server(url), EdgeStore(tmp_path / "direct")
    data = points(300)
    for store in (remote, direct):
        store.ensure_collection(SPEC)
        store.upsert(SPEC.name, data)
        store.delete(SPEC.name, Filter(must=(Match("fold", 1),)))
    remote.ping()
    for flt in FILTERS:
        assert remote.count(SPEC.name, flt) == direct.count(SPEC.name, flt)
        for query in points(5, seed=7):
            a = remote.search(SPEC.name, query.vector, 10, flt)
            b = direct.search(SPEC.name, query.vector, 10, flt)
            assert [h.id for h in a] == [h.id for h in b]
            assert [h.payload for h in a] == [h.payload for h in b]
            assert all(abs(x.score - y.score) < 1e-5 for x, y in zip(a, b))
    ids = [p.id for p in data[:5]]
    assert [r.payload for r in remote.retrieve(SPEC.name, ids)] == [r.payload for r in direct.retrieve(SPEC.name, ids)]
    direct.close()


def test_the_host_refuses_what_it_does_not_serve_and_reports_missing_collections(host):
    url, _ = host
    import httpx
    response = httpx.post(f"{url}/collections/tumors__host-test/points/query",
                          json={"query": [0.0] * 8, "limit": 3})
    assert response.status_code == 404
    store = QdrantStore.server(url)
    store.ensure_collection(SPEC)
    response = httpx.post(f"{url}/collections/{SPEC.name}/points/count",
                          json={"filter": {"should": [{"key": "fold", "match": {"value": 1}}]}})
    assert response.status_code == 400 and "must" in response.json()["status"]["error"]
    with pytest.raises(ValueError, match="size 8"):
        store.ensure_collection(CollectionSpec(SPEC.name, "roi", 16))


def test_payload_indexes_asked_through_rest_are_built(host):
    # qdrant-client creates a collection, then one index per field: the engine must end up with them all,
    # or every filtered search scans every payload (bench query: 0.5 s instead of 10 ms at 100k points).
    url, vectors = host
    QdrantStore.server(url).ensure_collection(SPEC)
    recorded = json.loads((vectors / f"{SPEC.name}.json").read_text())
    assert recorded["indexes"] == SPEC.indexes, recorded


def test_collection_is_yellow_until_its_segments_are_optimized_after_writes(host):
    """After a bulk load the host optimises the collection's segments once writes go quiet (5 s) and says
    "yellow" until then, as a Qdrant server does; searches find the same points before and after."""
    from qdrant_client import QdrantClient, models  # noqa: PLC0415

    url, _ = host
    store, client = QdrantStore.server(url), QdrantClient(url=url)
    store.ensure_collection(SPEC)
    store.upsert(SPEC.name, points(2000))
    query = points(1, seed=9)[0].vector
    before = [h.id for h in store.search(SPEC.name, query, 10, FILTERS[2])]
    assert client.get_collection(SPEC.name).status == models.CollectionStatus.YELLOW
    deadline = time.monotonic() + 30
    while client.get_collection(SPEC.name).status != models.CollectionStatus.GREEN:
        assert time.monotonic() < deadline, "expected the collection green within 30 s of the last write"
        time.sleep(0.2)
    assert [h.id for h in store.search(SPEC.name, query, 10, FILTERS[2])] == before
    assert store.count(SPEC.name) == 2000


def test_a_point_and_its_neighbours_come_in_one_request_with_the_engines_answer(host, tmp_path):
    url, _ = host
    remote, direct = QdrantStore.server(url), EdgeStore(tmp_path / "direct")
    data = points(200, seed=3)
    for store in (remote, direct):
        store.ensure_collection(SPEC)
        store.upsert(SPEC.name, data)
    for flt in FILTERS:
        for point in data[:5]:
            own, near = remote.point_and_neighbours(SPEC.name, point.id, 12, flt)
            assert own is not None and own.id == point.id and own.payload == point.payload
            stored = direct.retrieve(SPEC.name, [point.id])[0].vector  # normalised by the engine (Cosine)
            assert own.vector == pytest.approx(stored, abs=1e-6)
            expected = direct.search(SPEC.name, stored, 12, flt)
            assert [h.id for h in near] == [h.id for h in expected]
            assert [h.score for h in near] == pytest.approx([h.score for h in expected], abs=1e-6)
    missing = str(uuid.uuid4())
    assert remote.point_and_neighbours(SPEC.name, missing, 5) == (None, [])
    with pytest.raises(CollectionMissing):
        remote.point_and_neighbours("tumors__nothing-here", missing, 5)


def test_query_batch_refuses_what_it_does_not_serve(host):
    import httpx  # noqa: PLC0415

    url, _ = host
    QdrantStore.server(url).ensure_collection(SPEC)
    batch = f"{url}/collections/{SPEC.name}/points/query/batch"
    scroll_like = {"filter": {"must": [{"key": "tumor_type", "match": {"value": "glioma"}}]}, "limit": 3}
    answer = httpx.post(batch, json={"searches": [scroll_like]})
    assert answer.status_code == 400 and "has_id" in answer.json()["status"]["error"]
    assert httpx.post(batch, json={"searches": "all"}).status_code == 400
    by_missing_id = {"query": str(uuid.uuid4()), "limit": 3}
    assert httpx.post(batch, json={"searches": [by_missing_id]}).status_code == 404
