"""What `bench system` measures once studies are in: the retrieval protocol of Cheng et al. through the
gateway's HTTP API (each fold-K study's main tumour against the main tumours of the other folds,
relevance = same type), the same protocol offline on the same checkpoint, and latency statistics."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

import numpy as np


class Gateway:
    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies_ms: list[float] = []

    def get(self, path: str, timeout: float = 60) -> tuple[int, dict]:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read() or b"{}")
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        return status, body


def main_tumour(study: dict) -> str | None:
    """The study's tumour 0 (its largest), the one `tumorsearch evaluate` boxes automatically."""
    mains = [t["id"] for t in study.get("tumors", []) if t["tumor_index"] == 0]
    return mains[0] if mains else None


def average_precision(ranked_types: list[str], query_type: str, relevant_total: int) -> tuple[float, float]:
    """(AP over the full ranking, precision at 10), as shared.model.retrieval.map_and_p10 computes them."""
    relevant = np.array([t == query_type for t in ranked_types], dtype=float)
    if relevant_total == 0:
        return 0.0, 0.0
    precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
    return float((precision * relevant).sum() / relevant_total), float(relevant[:10].mean()) if len(relevant) else 0.0


def system_rankings(gateway: Gateway, queries: dict[str, str | None], database_folds: Iterable[int],
                    k: int) -> tuple[dict[str, list[str] | None], set[int]]:
    """Per query study: the database's study UIDs, most similar first (None = no tumour found); and the
    query expansions the gateway reported (neighbours used)."""
    folds = "".join(f"&fold={f}" for f in database_folds)
    ranked: dict[str, list[str] | None] = {}
    expansions: set[int] = set()
    for study_uid, tumour in queries.items():
        if tumour is None:
            ranked[study_uid] = None
            continue
        status, body = gateway.get(f"/api/v1/tumors/{tumour}/similar?k={k}&main_only=true"
                                   f"&exclude_same_patient=false{folds}")
        if status != 200:
            raise RuntimeError(f"expected 200 from /similar, found {status}: {body}")
        ranked[study_uid] = [r["tumor"]["study_instance_uid"] for r in body["results"]]
        expansions.add(int(body["query_expansion"]))
    return ranked, expansions


def mean_ap(rankings: dict, query_type: dict, database_type: dict) -> tuple[float, float]:
    """mAP and P@10 (a query without a ranking scores 0), relevance = same type."""
    aps, p10s = [], []
    for query, ranked in rankings.items():
        total = sum(t == query_type[query] for t in database_type.values())
        ap, p10 = (0.0, 0.0) if ranked is None else average_precision(
            [database_type[r] for r in ranked], query_type[query], total)
        aps.append(ap)
        p10s.append(p10)
    return round(float(np.mean(aps)), 4), round(float(np.mean(p10s)), 4)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def offline_rankings(figshare_root, query_ids: list[int], database_ids: list[int], expansion: int = 0
                     ) -> tuple[dict[int, list[int] | None], str]:
    """The same protocol offline: `shared.model.inference.predict` (what `tumorsearch evaluate` runs) on the
    same images with the shipped checkpoint, ranked with the gateway's query expansion (`expansion`
    neighbours, 0 = none; shared.vectorstore.expansion); per query image, database image ids most similar
    first."""
    import torch

    from shared.model import checkpoint
    from shared.model.figshare import load_figshare
    from shared.model.inference import predict
    from shared.model.retrieval import rankings
    from shared.vectorstore.expansion import expanded_queries

    model, card = checkpoint.load(checkpoint.SHIPPED)
    data = load_figshare(figshare_root, card["architecture"]["input_size"], progress=False)
    queries, database = (data.select(np.isin(data.ids, ids)) for ids in (query_ids, database_ids))
    q = predict(model, queries.images, None, torch.device("cpu")).embeddings["auto"]
    d = predict(model, database.images, None, torch.device("cpu")).embeddings["auto"]
    keep = ~np.isnan(d).any(1)
    if expansion:
        q = expanded_queries(q, d[keep], expansion)
    order = rankings(np.nan_to_num(q), d[keep])
    kept_ids = database.ids[keep]
    result = {int(image): (None if np.isnan(q[i]).any() else [int(x) for x in kept_ids[order[i]]])
              for i, image in enumerate(queries.ids)}
    return result, str(card["model_version"])


def quote(uid: str) -> str:
    return urllib.parse.quote(uid, safe="")
