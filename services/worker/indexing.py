"""Tumours into the vector store: one point per tumour with a deterministic id, so a re-sent study
replaces its points; points the study had before and no longer has are deleted after the upsert.

Order matters for a worker killed half-way: upsert first (the study stays searchable throughout), then
delete what is stale. A redelivered task does both again, with the same ids.
"""

from __future__ import annotations

import hashlib
import hmac

from services.worker.tumours import Tumour
from shared.contracts.vectors import TumorPayload, collection_name, collection_spec, point_id
from shared.model.tasks import CLASSIFICATION_TASKS
from shared.vectorstore.base import Filter, Match, PointRecord, Range, VectorStore

TYPE_TASK = "type"


def patient_hash(key: bytes, patient_id: str, issuer: str = "") -> str:
    """A keyed hash of the patient: equal for one patient's studies, useless without the key."""
    return hmac.new(key, f"{issuer}|{patient_id}".encode(), hashlib.sha256).hexdigest()[:32]


def payload(tumour: Tumour, study_uid: str, series_uid: str, model_version: str, patient: str,
            slices: int, fold: int | None = None, types: tuple[str, ...] | None = None) -> TumorPayload:
    """`types`: the checkpoint's type classes (its card); the 2D figshare classes by default."""
    types = types or CLASSIFICATION_TASKS[TYPE_TASK].classes
    probabilities = tumour.probabilities[TYPE_TASK]
    return TumorPayload(
        study_instance_uid=study_uid, series_instance_uid=series_uid, tumor_index=tumour.index,
        model_version=model_version, tumor_type=types[int(probabilities.argmax())],
        type_probabilities={t: round(float(p), 4) for t, p in zip(types, probabilities)},
        size_mm3=tumour.size_mm3, centroid_mm=tumour.centroid_mm, box_voxels=tumour.source_box,
        patient_hash=patient, slices=slices, fold=fold, **tumour.location)


def index_series(store: VectorStore, model_version: str, payloads: list[TumorPayload], vectors: list,
                 embedding_size: int) -> list[str]:
    """Upsert the series' tumours, then delete its points beyond them; returns the point ids."""
    collection = collection_name(model_version)
    store.ensure_collection(collection_spec(model_version, embedding_size))
    ids = [point_id(p.study_instance_uid, p.series_instance_uid, p.tumor_index, model_version) for p in payloads]
    if payloads:
        store.upsert(collection, [PointRecord(i, [float(v) for v in vector], p.model_dump(mode="json"))
                                  for i, vector, p in zip(ids, vectors, payloads)])
    return ids


def delete_stale(store: VectorStore, model_version: str, study_uid: str, kept: dict[str, int]) -> None:
    """Remove the study's points that this run did not write: series no longer chosen, and tumours
    numbered beyond what each series has now (`kept`: series UID -> number of tumours)."""
    collection = collection_name(model_version)
    if not store.collection_exists(collection):
        return
    study = Match("study_instance_uid", study_uid)
    store.delete(collection, Filter(must=(study,), must_not=tuple(Match("series_instance_uid", s) for s in kept)))
    for series_uid, count in kept.items():
        store.delete(collection, Filter(must=(study, Match("series_instance_uid", series_uid),
                                              Range("tumor_index", gte=count))))
