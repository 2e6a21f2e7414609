"""A study's processing state, written by the worker and read by the gateway (through Redis).

Stored under a key made of the study's digest (never the UID text), as one JSON document, so the
gateway answers "received / processing / done with N tumours / no tumour found / failed: why" for any
study it is asked about. No patient data: identifiers of the series chosen and reasons only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.uids import uid_key

StudyState = Literal["received", "processing", "done", "no_tumour", "failed"]
KEY_PREFIX = "tumorsearch:study:"


class SeriesReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    series_instance_uid: str
    description: str = ""
    slices: int = Field(ge=0)
    chosen_because: str
    tumours: int = Field(0, ge=0)
    error: str | None = None


class StudyStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    study_instance_uid: str
    state: StudyState
    tumours: int = Field(0, ge=0)
    reason: str | None = Field(None, description="why it failed, or why nothing was processed")
    model_version: str | None = None
    series: list[SeriesReport] = []
    skipped: list[str] = Field([], description="objects not processed, with the reason and how many")
    point_ids: list[str] = []
    segmentation_sop_instance_uid: str | None = None
    handover: int = Field(1, ge=1)
    seconds: dict[str, float] = Field({}, description="time per stage: read, decode, model, postprocess, upsert")
    updated_at: float = Field(description="Unix time of this state")


def status_key(study_uid: str) -> str:
    return KEY_PREFIX + uid_key(study_uid, "study")
