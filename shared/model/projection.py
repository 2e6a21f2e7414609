"""A closed-form linear projection of the RoiPool embedding, in the spirit of the closed-form metric
learning of Cheng et al. 2016: whiten the within-type scatter of the database's embeddings, so that
directions along which tumours of one type vary a lot count less in the cosine ranking, and directions
that separate types count more. It keeps every dimension (size and location information stays), and
it is fitted on the database folds only (the training folds), never on a test fold.

    W = (S_w + λ·tr(S_w)/D·I)^(-1/2),   b = -W·m      (m: mean of the database embeddings)
"""

from __future__ import annotations

import numpy as np

SHRINKAGE = 0.1  # λ: keeps rarely varying directions from being blown up into noise


def fit_projection(embeddings: np.ndarray, labels: np.ndarray, shrinkage: float = SHRINKAGE
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) with projected = W @ x + b, from database embeddings (N, D) and their type labels."""
    keep = ~np.isnan(embeddings).any(1)
    x, y = embeddings[keep].astype(np.float64), labels[keep]
    if len(np.unique(y)) < 2:
        raise ValueError(f"projection: expected embeddings of at least 2 types, found {len(np.unique(y))}")
    dims = x.shape[1]
    within = np.zeros((dims, dims))
    for label in np.unique(y):
        centred = x[y == label] - x[y == label].mean(0)
        within += centred.T @ centred
    within /= len(x)
    within += shrinkage * np.trace(within) / dims * np.eye(dims)
    values, vectors = np.linalg.eigh(within)
    w = vectors @ np.diag(values ** -0.5) @ vectors.T
    b = -w @ x.mean(0)
    return w.astype(np.float32), b.astype(np.float32)


def apply_projection(embeddings: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return embeddings @ w.T + b
