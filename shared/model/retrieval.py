"""The retrieval protocol of Cheng et al. 2016 and the paper's other criteria, on embeddings.

Each query ranks the whole database by cosine similarity; relevance = same tumour type. A query with
no embedding (the model found no tumour) retrieves nothing relevant: its AP and P@10 are 0.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from shared.vectorstore.expansion import unit_rows as _unit

KNN_MAX = 50


def rankings(queries: np.ndarray, database: np.ndarray, limit: int | None = None) -> np.ndarray:
    """(Q, limit) database indices, most similar first; queries with NaN rows get arbitrary order."""
    sims = np.nan_to_num(_unit(queries) @ _unit(database).T, nan=-2.0)
    order = np.argsort(-sims, axis=1, kind="stable")
    return order if limit is None else order[:, :limit]


def map_and_p10(queries: np.ndarray, q_labels: np.ndarray, database: np.ndarray, db_labels: np.ndarray
                ) -> tuple[float, float, np.ndarray]:
    """(mAP, P@10, per-query AP). Database rows without an embedding are not in the database."""
    keep = ~np.isnan(database).any(1)
    database, db_labels = database[keep], db_labels[keep]
    order = rankings(queries, database)
    relevant = db_labels[order] == q_labels[:, None]
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    ap = (precision * relevant).sum(1) / np.maximum(relevant.sum(1), 1)
    p10 = relevant[:, :10].mean(1)
    missing = np.isnan(queries).any(1)
    ap[missing], p10[missing] = 0.0, 0.0
    return float(ap.mean()), float(p10.mean()), ap


def knn_accuracy(queries: np.ndarray, q_labels: np.ndarray, database: np.ndarray, db_labels: np.ndarray,
                 classes: int, k_max: int = KNN_MAX) -> list[float]:
    """Accuracy of a k-nearest-neighbour vote for k = 1..k_max (ties go to the nearer neighbour)."""
    keep = ~np.isnan(database).any(1)
    order = rankings(queries, database[keep], k_max)
    votes = np.eye(classes)[db_labels[keep][order]]                 # (Q, k, C)
    votes = votes * (1 + 1e-6 * np.arange(k_max, 0, -1))[None, :, None]  # nearer wins a tie
    predicted = np.cumsum(votes, axis=1).argmax(2)                   # (Q, k)
    correct = (predicted == q_labels[:, None]) & ~np.isnan(queries).any(1)[:, None]
    return [round(float(v), 4) for v in correct.mean(0)]


def distance_size_spearman(queries: np.ndarray, q_size: np.ndarray, database: np.ndarray, db_size: np.ndarray,
                           max_pairs: int = 400_000, seed: int = 0) -> float:
    """Spearman correlation between cosine distance and |area difference| over query-database pairs."""
    keep_q, keep_d = ~np.isnan(queries).any(1), ~np.isnan(database).any(1)
    distance = 1 - _unit(queries[keep_q]) @ _unit(database[keep_d]).T
    difference = np.abs(q_size[keep_q][:, None] - db_size[keep_d][None, :])
    distance, difference = distance.ravel(), difference.ravel()
    if distance.size > max_pairs:
        pick = np.random.default_rng(seed).choice(distance.size, max_pairs, replace=False)
        distance, difference = distance[pick], difference[pick]
    return float(stats.spearmanr(distance, difference).statistic)


def dice_scores(predicted: np.ndarray, expert: np.ndarray) -> np.ndarray:
    inter = (predicted & expert).sum((1, 2))
    total = predicted.sum((1, 2)) + expert.sum((1, 2))
    return np.where(total == 0, 1.0, 2 * inter / np.maximum(total, 1))
