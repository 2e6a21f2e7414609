"""POST /api/v1/search: similar tumours for a box the radiologist drew on a received series.

The gateway has no model: it sends `tumorsearch.worker.embed_region` (interactive queue, ahead of any
backlog of studies) with a fresh reply list, waits on that list with BLPOP for at most
`region_timeout_s`, then searches with the returned vector like /similar does.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from werkzeug.exceptions import BadRequest, GatewayTimeout, UnprocessableEntity

from services.gateway.api import checked_uid, deps, similar_to
from services.gateway.query_params import describe, parse_similar
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import EMBED_REGION, EmbedRegion, RegionEmbedding
from shared.study_status_store import StudyStatusStore

region = Blueprint("region", __name__, url_prefix="/api/v1")


class Box(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voxels: tuple[int, int, int, int, int, int] | None = None
    patient_mm: tuple[float, float, float, float, float, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> "Box":
        if (self.voxels is None) == (self.patient_mm is None):
            raise ValueError("expected exactly one of voxels and patient_mm")
        return self


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # the filters of /similar ride along

    study_instance_uid: str
    series_instance_uid: str
    box: Box
    k: int = Field(10, ge=1)


@region.post("/search")
def search():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object")
    try:
        parsed = SearchBody.model_validate(body)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None
    filters = parse_similar({k: v for k, v in body.items() if k not in ("study_instance_uid", "series_instance_uid",
                                                                        "box")}, deps().section.max_k)
    embedding = _embed(parsed)
    result = similar_to(embedding.vector, None, None, filters)
    result["query"] = {"study_instance_uid": parsed.study_instance_uid,
                       "series_instance_uid": parsed.series_instance_uid, "box_voxels": embedding.box_voxels}
    return jsonify(result)


def _embed(parsed: SearchBody) -> RegionEmbedding:
    study_uid = checked_uid(parsed.study_instance_uid, "study UID")
    series_uid = checked_uid(parsed.series_instance_uid, "series UID")
    status: StudyStatus | None = StudyStatusStore(deps().redis).get(study_uid)
    if status is None:
        raise UnprocessableEntity("study: expected a study TumorSearch has received, found an unknown one")
    reply_to = f"tumorsearch:region:{uuid.uuid4().hex}"
    try:
        message = EmbedRegion(study_instance_uid=study_uid, series_instance_uid=series_uid,
                              location=deps().layout.study_location(study_uid), box_voxels=parsed.box.voxels,
                              box_patient_mm=parsed.box.patient_mm, reply_to=reply_to)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None
    deps().send_task(EMBED_REGION, {"message": message.model_dump()})
    return _wait(reply_to)


def _wait(reply_to: str) -> RegionEmbedding:
    timeout = deps().section.region_timeout_s
    answer: Any = (deps().redis_blocking or deps().redis).blpop([reply_to], timeout=timeout)
    if answer is None:
        raise GatewayTimeout(f"region search: the worker did not answer within {timeout:g} s; is a worker running?")
    embedding = RegionEmbedding.model_validate_json(answer[1])
    if embedding.error or embedding.vector is None:
        raise UnprocessableEntity(f"region: {embedding.error or 'no embedding'}")
    if embedding.model_version != deps().model_version:
        raise UnprocessableEntity(f"model: expected the worker to run {deps().model_version}, found "
                                  f"{embedding.model_version}; align TUMORSEARCH_GATEWAY__MODEL_VERSION")
    return embedding
