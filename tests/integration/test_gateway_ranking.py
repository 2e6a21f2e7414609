"""The gateway's ranking against the embedded engine: query expansion moves a borderline query to its
neighbours' side, never uses the query tumour or (when excluded) its patient as a neighbour, and 0 turns it
off; scores fall from first to last."""

from __future__ import annotations

import math
import uuid

import pytest

from services.gateway.query_params import SimilarQuery
from services.gateway.ranking import first_ranking_size, rank
from shared.vectorstore.base import CollectionSpec, PointRecord
from shared.vectorstore.edge_backend import EdgeStore

pytestmark = pytest.mark.integration

SPEC = CollectionSpec("tumors__ranking-test", "roi", 2, "Cosine", {"patient_hash": "keyword"})


def at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def point(n: int, degrees: float, patient: str) -> PointRecord:
    return PointRecord(str(uuid.UUID(int=n)), at(degrees), {"patient_hash": patient, "n": n})


@pytest.fixture()
def store(tmp_path):
    store = EdgeStore(tmp_path / "vectors")
    store.ensure_collection(SPEC)
    # One cluster of four tumours around 12-20 degrees, a lone tumour at -17; the query sits at -6, nearer
    # the lone one. Tumour 9 belongs to the query's patient and lies right beside it.
    store.upsert(SPEC.name, [point(1, 12, "a"), point(2, 14, "b"), point(3, 17, "c"), point(4, 20, "d"),
                             point(5, -17, "e"), point(9, -6.5, "query-patient"), point(10, -6, "query-patient")])
    yield store
    store.close()


def ranked(store, neighbours: int, exclude_same_patient: bool = True):
    query = SimilarQuery(k=3, exclude_same_patient=exclude_same_patient)
    patient = "query-patient" if exclude_same_patient else None
    return rank(store, SPEC.name, at(-6), query, str(uuid.UUID(int=10)), patient, neighbours)


def numbers(ranking) -> list[int]:
    return [h.payload["n"] for h in ranking.hits]


def test_without_expansion_the_nearest_vector_comes_first(store):
    ranking = ranked(store, 0)
    assert ranking.neighbours == 0 and numbers(ranking)[0] == 5


def test_expansion_moves_a_borderline_query_to_its_neighbours_side(store):
    ranking = ranked(store, 3)
    assert ranking.neighbours == 3 and numbers(ranking)[0] == 1
    scores = [h.score for h in ranking.hits]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3


def test_the_query_tumour_and_its_patient_are_never_neighbours_nor_results(store):
    excluded = numbers(ranked(store, 3))
    assert 9 not in excluded and 10 not in excluded
    # With the patient kept, its tumour 9 (0.5 degrees away) is the first result and a neighbour: with 1
    # neighbour the expanded query is the query and tumour 9, so tumour 5 stays ahead of the cluster.
    included = ranked(store, 1, exclude_same_patient=False)
    assert numbers(included)[0] == 9 and 10 not in numbers(included)


def test_the_first_ranking_fetches_enough_for_the_results_and_the_expansion():
    assert first_ranking_size(SimilarQuery(k=3, exclude_same_patient=False), 10) == 11
    assert first_ranking_size(SimilarQuery(k=30, exclude_same_patient=True), 10) == 41
