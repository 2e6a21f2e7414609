"""Celery task names and the messages they carry. Tasks are sent by name: no program imports another.

A message carries identifiers and a storage location only: never a patient's name, ID, birth date or
any other attribute of the dataset. The worker reads those from the stored files when it needs them.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts.uids import validate_uid

# Names are part of the contract: renaming one strands messages already queued.
PROCESS_STUDY = "tumorsearch.worker.process_study"
EMBED_REGION = "tumorsearch.worker.embed_region"

# Queues, so region searches (a radiologist waiting) never wait behind a backlog of studies.
STUDY_QUEUE = "studies"
INTERACTIVE_QUEUE = "interactive"

TASK_QUEUES = {PROCESS_STUDY: STUDY_QUEUE, EMBED_REGION: INTERACTIVE_QUEUE}


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyReady(Message):
    """Listener -> worker: a study's instances are on disk and quiet; process them (idempotent)."""

    schema_version: Literal[1] = 1
    study_instance_uid: str
    location: str = Field(description="Folder of the study relative to TUMORSEARCH_HOME (StudyLayout)")
    instance_count: int = Field(ge=1)
    handover: int = Field(ge=1, description="1 for the first hand-over of this study, +1 for each re-send")

    @field_validator("study_instance_uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        return validate_uid(value, "study_instance_uid")


class EmbedRegion(Message):
    """Gateway -> worker: embed a box in a stored series (a region search). The worker pushes a
    RegionEmbedding as JSON onto the Redis list `reply_to`, where the gateway waits for it."""

    schema_version: Literal[1] = 1
    study_instance_uid: str
    series_instance_uid: str
    location: str
    box_voxels: tuple[int, int, int, int, int, int] | None = Field(
        None, description="k0, r0, c0, k1, r1, c1: slice, row and column indices of the series volume, end exclusive")
    box_patient_mm: tuple[float, float, float, float, float, float] | None = Field(
        None, description="two opposite corners in patient coordinates (LPS mm)")
    reply_to: str = Field(pattern=r"^tumorsearch:region:[0-9a-f]{32}$")

    @field_validator("study_instance_uid", "series_instance_uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        return validate_uid(value)

    @model_validator(mode="after")
    def _one_box(self) -> "EmbedRegion":
        if (self.box_voxels is None) == (self.box_patient_mm is None):
            raise ValueError("box: expected exactly one of box_voxels and box_patient_mm")
        if self.box_patient_mm is not None and not all(math.isfinite(v) for v in self.box_patient_mm):
            raise ValueError("box_patient_mm: expected finite numbers")
        return self


class RegionEmbedding(Message):
    """Worker -> gateway (through the reply list): the region's embedding, or why there is none."""

    schema_version: Literal[1] = 1
    model_version: str | None = None
    vector: list[float] | None = None
    box_voxels: tuple[int, int, int, int, int, int] | None = None
    error: str | None = None
