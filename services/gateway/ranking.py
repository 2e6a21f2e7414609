"""How the gateway ranks the tumours most like a query vector: the query's filters, without the query
tumour itself and (by default) without its patient, and with query expansion
(shared/vectorstore/expansion.py): the final ranking uses the query's vector plus those of its
`neighbours` nearest tumours in the first ranking, the ranking `tumorsearch evaluate` measures.

Scores are cosine similarities to the vector the final ranking used (the expanded one when expansion is
on), so they fall from the first result to the last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.gateway.query_params import SimilarQuery
from shared.vectorstore.base import Hit, VectorStore
from shared.vectorstore.expansion import expanded_query

SAME_PATIENT_MARGIN = 10  # extra hits fetched so the same patient's tumours can be dropped afterwards


@dataclass(frozen=True)
class Ranking:
    hits: list[Hit]     # at most query.k, most similar first
    neighbours: int     # how many neighbours expanded the query (0: ranked by the query's own vector)


def first_ranking_size(query: SimilarQuery, neighbours: int) -> int:
    """Hits to fetch for the first ranking: enough for the results and the expansion after dropping the query
    tumour and, when excluded, its patient's other tumours."""
    return max(query.k, neighbours) + 1 + (SAME_PATIENT_MARGIN if query.exclude_same_patient else 0)


def rank(store: VectorStore, collection: str, vector: Sequence[float], query: SimilarQuery, own_id: str | None,
         patient: str | None, neighbours: int, hits: list[Hit] | None = None) -> Ranking:
    """`hits`: a first ranking of `first_ranking_size(query, neighbours)` already fetched with the query's
    filters (None: fetched here). `patient`: the patient hash to leave out, or None."""
    wanted = first_ranking_size(query, neighbours)
    first = _kept(store, collection, vector, query, own_id, patient, max(query.k, neighbours), wanted, hits)
    if neighbours == 0 or not first:
        return Ranking(first[:query.k], 0)
    nearest = store.retrieve(collection, [h.id for h in first[:neighbours]])
    if not nearest:  # deleted between the two calls (a study sent again): rank by the query alone
        return Ranking(first[:query.k], 0)
    expanded = expanded_query(vector, [p.vector for p in nearest])
    wanted = first_ranking_size(query, 0)
    final = _kept(store, collection, expanded, query, own_id, patient, query.k, wanted, None)
    return Ranking(final[:query.k], len(nearest))


def _kept(store: VectorStore, collection: str, vector: Sequence[float], query: SimilarQuery, own_id: str | None,
          patient: str | None, needed: int, wanted: int, hits: list[Hit] | None) -> list[Hit]:
    """The ranking without the query tumour and its patient. The patient is dropped from a slightly longer
    unfiltered ranking when it can be (a `must_not` on the patient hash makes every search 3-4x slower in the
    engine); only when too few hits remain is the search run again with the exclusion as a filter."""
    if hits is None:
        hits = store.search(collection, vector, wanted, query.store_filter(None))
    kept = [h for h in hits if h.id != own_id and (patient is None or h.payload.get("patient_hash") != patient)]
    if len(kept) < needed and len(hits) == wanted:
        hits = store.search(collection, vector, needed + 1, query.store_filter(patient))
        kept = [h for h in hits if h.id != own_id]
    return kept
