"""Celery task names and the messages they carry. Tasks are sent by name: no program imports another.

A message carries identifiers and a storage location only: never a patient's name, ID, birth date or
any other attribute of the dataset. The worker reads those from the stored files when it needs them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    """Gateway -> worker: embed a box in a stored series and return the vector (a region search)."""

    schema_version: Literal[1] = 1
    study_instance_uid: str
    series_instance_uid: str
    location: str
    box_voxels: tuple[int, int, int, int, int, int] = Field(
        description="z0, y0, x0, z1, y1, x1 in voxel indices of the series volume, end exclusive")

    @field_validator("study_instance_uid", "series_instance_uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        return validate_uid(value)
