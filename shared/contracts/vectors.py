"""The vector-store schema: collection names, the vector, point ids and the payload of one tumour.

One collection per model version (`tumors__<model version>`): embeddings of two models are not
comparable, so a new checkpoint fills a new collection while the old one keeps answering.
"""

from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contracts.uids import validate_uid

VECTOR_NAME = "roi"  # the RoiPool embedding; a name leaves room for more vectors per tumour later
COLLECTION_PREFIX = "tumors__"
PAYLOAD_SCHEMA_VERSION = 1

# Fixed forever: changing it changes every point id and turns re-sends into duplicates.
POINT_NAMESPACE = uuid.UUID("5f1c1e7a-3b8e-4c2e-9a55-6d1f4b2a9c01")

_MODEL_VERSION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

# Payload fields the gateway filters on, with the index type a Qdrant server should build for each.
PAYLOAD_INDEXES: dict[str, Literal["keyword", "integer", "float"]] = {
    "study_instance_uid": "keyword",
    "series_instance_uid": "keyword",
    "tumor_type": "keyword",
    "hemisphere": "keyword",
    "patient_hash": "keyword",
    "size_mm3": "float",
    "fold": "integer",
    "tumor_index": "integer",
}


def collection_name(model_version: str) -> str:
    if not _MODEL_VERSION.match(model_version):
        raise ValueError(
            f"model version: expected lower-case letters, digits, '.', '_' or '-' (1-63 characters), "
            f"found {model_version!r}")
    return COLLECTION_PREFIX + model_version


def collection_spec(model_version: str, size: int):  # noqa: ANN201 - a shared.vectorstore CollectionSpec
    """The collection of one model version: the named RoiPool vector, cosine, the payload indexes."""
    from shared.vectorstore.base import CollectionSpec

    return CollectionSpec(collection_name(model_version), VECTOR_NAME, size, "Cosine", dict(PAYLOAD_INDEXES))


def point_id(study_uid: str, series_uid: str, tumor_index: int, model_version: str) -> str:
    """Same study, series, tumour and model -> same id, so a re-sent study replaces its points."""
    validate_uid(study_uid, "study_instance_uid")
    validate_uid(series_uid, "series_instance_uid")
    if tumor_index < 0:
        raise ValueError(f"tumor index: expected 0 or more, found {tumor_index}")
    return str(uuid.uuid5(POINT_NAMESPACE, f"{study_uid}|{series_uid}|{tumor_index}|{model_version}"))


class TumorPayload(BaseModel):
    """What is stored beside each tumour's vector. Identifiers and predicted labels; no patient data:
    the patient appears only as a keyed hash, for excluding a patient's own earlier studies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = PAYLOAD_SCHEMA_VERSION
    study_instance_uid: str
    series_instance_uid: str
    tumor_index: int = Field(ge=0)
    model_version: str
    tumor_type: str = Field(description="most probable predicted type")
    type_probabilities: dict[str, float]
    size_mm3: float = Field(ge=0, description="volume (3D) or area x slice thickness (single slice)")
    hemisphere: Literal["left", "right", "midline", "unknown"] = "unknown"
    anterior_posterior: Literal["anterior", "posterior", "central", "unknown"] = "unknown"
    superior_inferior: Literal["superior", "inferior", "central", "unknown"] = "unknown"
    slices: int = Field(1, ge=1, description="slices of the series the tumour was found in")
    centroid_mm: tuple[float, float, float] = Field(description="patient coordinates (LPS), millimetres")
    box_voxels: tuple[int, int, int, int, int, int]
    patient_hash: str = Field(pattern=r"^[0-9a-f]{32}$")
    fold: int | None = Field(None, description="benchmark fold, only for studies made by `dicomize`")

    @field_validator("study_instance_uid", "series_instance_uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        return validate_uid(value)
