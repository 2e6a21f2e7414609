"""Choosing the query expansion (shared/vectorstore/expansion.py) on a validation fold: every setting
(neighbours x power) scored on archives of several sizes drawn from the database, since a hospital's
archive starts small and an expansion that helps a 2000-tumour archive can wreck a 10-tumour one.

The rule: among settings that never lose more than `tolerance` mAP to ranking without expansion, at any
archive size and for either box, the one with the highest full-archive mAP (expert and automatic box
averaged)."""

from __future__ import annotations

import numpy as np

from shared.model.retrieval import map_and_p10
from shared.vectorstore.expansion import expanded_queries

NEIGHBOURS = (5, 10, 20)
POWERS = (0.0, 5.0, 10.0, 20.0)
ARCHIVES = (10, 30, 100, 300, 1000)   # and the whole database
DRAWS = 5
TOLERANCE = 0.005


def score_settings(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], q_types: np.ndarray,
                   d_types: np.ndarray, archives=ARCHIVES, draws: int = DRAWS, seed: int = 0) -> list[dict]:
    """Rows {box, archive, neighbours, power, map}: `embeddings` maps a box kind to (queries, database);
    neighbours 0 is ranking without expansion. Each archive size below the database's is `draws` random
    draws (the same draws for every setting); the mean mAP is reported."""
    rows = []
    for box, (queries, database) in embeddings.items():
        keep = ~np.isnan(database).any(1)
        database, types = database[keep], d_types[keep]
        rng = np.random.default_rng(seed)
        for archive in [a for a in archives if a < len(database)] + [len(database)]:
            picks = [np.arange(len(database))] if archive == len(database) else [
                rng.choice(len(database), archive, replace=False) for _ in range(draws)]
            for neighbours, power in [(0, 0.0)] + [(n, p) for n in NEIGHBOURS for p in POWERS]:
                scores = [_map(queries, q_types, database[pick], types[pick], neighbours, power) for pick in picks]
                rows.append({"box": box, "archive": int(archive), "neighbours": neighbours, "power": power,
                             "map": round(float(np.mean(scores)), 4)})
    return rows


def _map(queries, q_types, database, d_types, neighbours: int, power: float) -> float:
    if neighbours:
        queries = expanded_queries(queries, database, min(neighbours, len(database)), power)
    return map_and_p10(queries, q_types, database, d_types)[0]


def best_setting(rows: list[dict], tolerance: float = TOLERANCE) -> dict:
    """{neighbours, power, map_expert_box, map_auto_box} of the chosen setting (module docstring)."""
    plain = {(r["box"], r["archive"]): r["map"] for r in rows if r["neighbours"] == 0}
    full = {box: archive for box, archive in sorted(plain)}  # each box's largest archive: its whole database
    candidates = {}
    for r in rows:
        if r["neighbours"]:
            candidates.setdefault((r["neighbours"], r["power"]), []).append(r)
    safe = {key: rs for key, rs in candidates.items()
            if all(r["map"] >= plain[(r["box"], r["archive"])] - tolerance for r in rs)}
    if not safe:
        raise ValueError(f"no expansion setting stays within {tolerance} of ranking without it at every archive size")

    def full_map(rs: list[dict]) -> dict[str, float]:
        return {f"map_{r['box']}_box": r["map"] for r in rs if r["archive"] == full[r["box"]]}

    (neighbours, power), chosen = max(safe.items(), key=lambda kv: (np.mean(list(full_map(kv[1]).values())),
                                                                      -kv[0][0]))
    return {"neighbours": neighbours, "power": power, **full_map(chosen)}
