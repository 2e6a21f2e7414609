"""The synthetic archive `bench query` searches: tumour payloads with the figshare set's type mix and
plausible positions and sizes, random unit vectors, filled into the vector store in batches."""

from __future__ import annotations

import secrets
import sys
import time

import numpy as np
from tqdm import tqdm

from shared.contracts.vectors import TumorPayload, collection_name, collection_spec, point_id
from shared.vectorstore.base import PointRecord
from shared.vectorstore.qdrant_backend import QdrantStore

DIM = 64
BATCH = 1000
# figshare-cetumor: 708 meningiomas, 1426 gliomas, 930 pituitary tumours (23 / 47 / 30 %)
TYPES = ("meningioma", "glioma", "pituitary")
TYPE_SHARE = (0.23, 0.47, 0.30)
# Per type: where it lies (pituitary tumours sit on the midline) and its median size in mm^3.
HEMISPHERES = ("left", "right", "midline", "unknown")
HEMISPHERE_SHARE = {"meningioma": (0.42, 0.42, 0.11, 0.05), "glioma": (0.46, 0.46, 0.04, 0.04),
                    "pituitary": (0.05, 0.05, 0.85, 0.05)}
MEDIAN_SIZE_MM3 = {"meningioma": 9000.0, "glioma": 16000.0, "pituitary": 3500.0}


def model_version() -> str:
    from shared.shipped_model import shipped_model_version

    return shipped_model_version()


def _uids(n: int) -> list[str]:
    from pydicom.uid import generate_uid  # noqa: PLC0415 - worker/listener extra, present where benches run

    return [generate_uid() for _ in range(n)]


def payloads(n: int, version: str, seed: int = 7) -> list[TumorPayload]:
    """n tumours: patients with 2-5 tumours each, spread over 1-3 studies; one series per study."""
    rng = np.random.default_rng(seed)
    out: list[TumorPayload] = []
    while len(out) < n:
        patient = secrets.token_hex(16)
        tumour_type = TYPES[rng.choice(3, p=TYPE_SHARE)]
        count = min(int(rng.integers(2, 6)), n - len(out))
        studies = int(rng.integers(1, 4))
        study_uids = _uids(2 * studies)
        next_index = [0] * studies
        for _ in range(count):
            s = int(rng.integers(0, studies))
            kind = tumour_type if rng.random() < 0.9 else TYPES[rng.choice(3, p=TYPE_SHARE)]
            probabilities = rng.dirichlet([0.4, 0.4, 0.4])
            probabilities[TYPES.index(kind)] += 3.0
            probabilities /= probabilities.sum()
            volume = bool(rng.random() < 0.3)
            size = float(np.clip(rng.lognormal(np.log(MEDIAN_SIZE_MM3[kind]), 0.9), 50.0, 250_000.0))
            k0 = int(rng.integers(0, 120)) if volume else 0
            r0, c0 = (int(v) for v in rng.integers(20, 200, 2))
            out.append(TumorPayload(
                study_instance_uid=study_uids[2 * s], series_instance_uid=study_uids[2 * s + 1],
                tumor_index=next_index[s], model_version=version, tumor_type=kind,
                type_probabilities={t: round(float(p), 4) for t, p in zip(TYPES, probabilities)},
                size_mm3=round(size, 1), hemisphere=HEMISPHERES[rng.choice(4, p=HEMISPHERE_SHARE[kind])],
                anterior_posterior=("anterior", "posterior", "central", "unknown")[int(rng.integers(0, 4))],
                superior_inferior=(("superior", "inferior", "central", "unknown")[int(rng.integers(0, 4))]
                                   if volume else "unknown"),
                slices=int(rng.integers(120, 180)) if volume else 1,
                centroid_mm=tuple(round(float(v), 1) for v in rng.uniform(-80, 80, 3)),
                box_voxels=(k0, r0, c0, k0 + (int(rng.integers(5, 40)) if volume else 1),
                            r0 + int(rng.integers(10, 60)), c0 + int(rng.integers(10, 60))),
                patient_hash=patient))
            next_index[s] += 1
    return out


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(vector_url: str, n: int, version: str) -> tuple[dict, list[str]]:
    """Upsert n points through the vector host; returns the figures and every point id."""
    store = QdrantStore.server(vector_url, timeout_s=60.0)
    store.ensure_collection(collection_spec(version, DIM))  # the worker's own collection: vector, indexes
    collection = collection_name(version)
    rng = np.random.default_rng(11)
    ids: list[str] = []
    made_s = sent_s = 0.0
    try:
        with tqdm(total=n, desc="fill", unit="pt", mininterval=1, file=sys.stderr) as bar:
            for start in range(0, n, BATCH):
                started = time.perf_counter()
                batch = payloads(min(BATCH, n - start), version, seed=start)
                vectors = unit_vectors(rng, len(batch))
                points = [PointRecord(point_id(p.study_instance_uid, p.series_instance_uid, p.tumor_index, version),
                                      vectors[i].tolist(), p.model_dump(mode="json")) for i, p in enumerate(batch)]
                made_s += time.perf_counter() - started
                started = time.perf_counter()
                store.upsert(collection, points)
                sent_s += time.perf_counter() - started
                ids += [p.id for p in points]
                bar.update(len(points))
        count = store.count(collection)
    finally:
        store.close()
    settled_s = wait_until_green(vector_url, collection)
    return {"points": count, "upsert_s": round(sent_s, 2), "points_per_s": round(count / sent_s, 1),
            "payloads_made_s": round(made_s, 2), "batch": BATCH, "optimized_after_s": settled_s}, ids


def wait_until_green(vector_url: str, collection: str, timeout_s: float = 600.0) -> float:
    """Seconds until the store reports the collection "green" (its optimizer done with the fill), as one
    waits after a bulk load on a Qdrant server before serving queries from it."""
    from qdrant_client import QdrantClient, models  # noqa: PLC0415

    client = QdrantClient(url=vector_url, timeout=60)
    started = time.perf_counter()
    try:
        while client.get_collection(collection).status != models.CollectionStatus.GREEN:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"{collection}: expected status green within {timeout_s:.0f} s, still optimizing")
            time.sleep(0.5)
    finally:
        client.close()
    return round(time.perf_counter() - started, 1)


# ------------------------------------------------------------------ the clients

# ------------------------------------------------------------------ the servers
