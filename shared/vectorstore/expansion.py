"""Query expansion: re-rank with the query's vector plus those of its nearest neighbours, each scaled to
unit length and weighted by its cosine similarity to the query raised to a power (alpha query expansion,
Radenović et al. 2018; the power 0 is the average query expansion of Chum et al. 2007).

Why: a tumour's nearest neighbours in the archive mostly share its type, and their sum points closer to
where that type's tumours lie than the one query vector does. The weights matter in a small archive:
there the tenth neighbour is often a tumour of another type, and unweighted it drags every query to the
archive's centre (mAP 0.52 against 0.95 with an archive of 10 tumours); at the power 10 a neighbour of
similarity 0.97 counts 0.74, one of 0.5 (the median pair) counts 0.001. On the figshare benchmark it raised the
mean average precision of every fold we measured (docs/model.md, "Query expansion"). The embedding stays
the model's RoiPool vector; only the ranking changes. The gateway and `tumorsearch evaluate` share this
code, so the product ranks exactly as the published figure was measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Chosen on a validation fold (inner model trained on folds 1-3, queries from fold 4, archives of 10 to
# 1787 tumours drawn from folds 1-3), never on the test fold 5: docs/model.md, "Query expansion".
DEFAULT_NEIGHBOURS = 10
DEFAULT_POWER = 10.0


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _weighted_sum(query: np.ndarray, neighbours: np.ndarray, power: float) -> np.ndarray:
    """unit(query) + sum of unit(neighbour) * max(cosine, 0) ** power, for (..., D) queries and (..., n, D)
    neighbours."""
    query, neighbours = unit_rows(query), unit_rows(neighbours)
    weights = np.clip(np.einsum("...d,...nd->...n", query, neighbours), 0, None) ** power
    return query + np.einsum("...n,...nd->...d", weights, neighbours)


def expanded_query(vector: Sequence[float], neighbours: Sequence[Sequence[float]],
                   power: float = DEFAULT_POWER) -> list[float]:
    """One query and the vectors of its nearest neighbours (their order is irrelevant)."""
    lengths = sorted({len(v) for v in (vector, *neighbours)})
    if len(lengths) != 1 or lengths[0] == 0:
        raise ValueError(f"expanded_query: expected vectors of one length, found lengths {lengths}")
    rows = np.asarray([vector, *neighbours], dtype=np.float64)
    return [float(v) for v in _weighted_sum(rows[0], rows[1:], power)]


def expanded_queries(queries: np.ndarray, database: np.ndarray, neighbours: int,
                     power: float = DEFAULT_POWER) -> np.ndarray:
    """Many queries at once against a database (cosine ranking). Rows of NaN (no embedding) stay NaN in both:
    such a query keeps no vector, such a database row is never a neighbour."""
    if neighbours < 1:
        raise ValueError(f"neighbours: expected at least 1, found {neighbours}")
    missing = np.isnan(queries).any(1)
    base = unit_rows(database[~np.isnan(database).any(1)])
    unit = unit_rows(np.nan_to_num(queries))
    nearest = np.argsort(-(unit @ base.T), axis=1, kind="stable")[:, :neighbours]
    expanded = _weighted_sum(unit, base[nearest], power)
    expanded[missing] = np.nan
    return expanded
