"""The similar-case API for viewers (docs/gateway.md): a study's tumours and state, one tumour, its
thumbnail, and the tumours most like it."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, send_file
from werkzeug.exceptions import BadRequest, NotFound

from services.gateway.deps import GatewayDeps
from services.gateway.query_params import SimilarQuery, parse_similar
from services.gateway.ranking import Ranking, first_ranking_size, rank
from services.gateway.tumor_views import point_view, tumor_view, why_matched
from shared.contracts.study_status import StudyStatus
from shared.contracts.uids import InvalidUid, validate_uid
from shared.study_status_store import StudyStatusStore
from shared.vectorstore.base import CollectionMissing, Hit, PointRecord

api = Blueprint("api", __name__, url_prefix="/api/v1")


def deps() -> GatewayDeps:
    return current_app.extensions["tumorsearch.deps"]


def checked_uid(value: str, what: str) -> str:
    try:
        return validate_uid(value, what)
    except InvalidUid as error:
        raise BadRequest(str(error)) from None


def checked_point_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"tumour id: expected a UUID, found {len(value)} characters that are not one") from None


NO_SUCH_TUMOUR = "tumour: no tumour with this id in the index"


def load_point(point_id: str) -> PointRecord:
    try:
        found = deps().store.retrieve(deps().collection, [checked_point_id(point_id)])
    except CollectionMissing:
        found = []
    if not found:
        raise NotFound(NO_SUCH_TUMOUR)
    return found[0]


@api.get("/studies/<study_uid>")
def study(study_uid: str):
    study_uid = checked_uid(study_uid, "study UID")
    status = StudyStatusStore(deps().redis).get(study_uid)
    points = _study_points(status)
    if status is None and not points:
        raise NotFound("study: this study is unknown to TumorSearch (not received, or not yet handed over)")
    body = _status_view(status, study_uid)
    body["tumors"] = [point_view(p) for p in sorted(points, key=lambda p: (p.payload["series_instance_uid"],
                                                                          p.payload["tumor_index"]))]
    return jsonify(body)


def _study_points(status: StudyStatus | None) -> list[PointRecord]:
    ids = status.point_ids if status is not None else []
    try:
        return deps().store.retrieve(deps().collection, ids) if ids else []
    except CollectionMissing:
        return []


def _status_view(status: StudyStatus | None, study_uid: str) -> dict[str, Any]:
    if status is None:
        return {"study_instance_uid": study_uid, "state": "unknown", "reason": None, "model_version": None,
                "series": []}
    return {"study_instance_uid": study_uid, "state": status.state, "reason": status.reason,
            "model_version": status.model_version,
            "series": [s.model_dump(include={"series_instance_uid", "description", "slices", "chosen_because",
                                             "tumours", "error"}) for s in status.series]}


@api.get("/tumors/<point_id>")
def tumor(point_id: str):
    return jsonify(point_view(load_point(point_id)))


@api.get("/tumors/<point_id>/thumbnail.png")
def thumbnail(point_id: str):
    point = load_point(point_id)
    path = deps().layout.thumbnail_path(point.id)
    if not path.is_file():
        raise NotFound("thumbnail: the worker wrote none for this tumour")
    return send_file(path, mimetype="image/png", max_age=0)


@api.get("/tumors/<point_id>/similar")
def similar(point_id: str):
    query = parse_similar(request.args, deps().section.max_k)
    # The tumour and a first ranking in one round trip to the store (half the requests of retrieve + search).
    try:
        point, hits = deps().store.point_and_neighbours(
            deps().collection, checked_point_id(point_id),
            first_ranking_size(query, deps().section.query_expansion), query.store_filter(None))
    except CollectionMissing:
        point, hits = None, []
    if point is None:
        raise NotFound(NO_SUCH_TUMOUR)
    body = similar_to(point.vector, point.payload, point.id, query, hits)
    body["query"] = point_view(point)
    return jsonify(body)


def similar_to(vector, payload: dict | None, own_id: str | None, query: SimilarQuery,  # noqa: ANN001
               hits: list[Hit] | None = None) -> dict[str, Any]:
    """The k most similar tumours passing the filters, without the query tumour itself (services/gateway/
    ranking.py; `hits`: a first ranking of `first_ranking_size` already fetched with the query's filters)."""
    patient = payload.get("patient_hash") if payload and query.exclude_same_patient else None
    try:
        ranking = rank(deps().store, deps().collection, vector, query, own_id, patient,
                       deps().section.query_expansion, hits)
    except CollectionMissing:
        ranking = Ranking([], 0)
    results = [{"similarity": round(h.score, 4), "tumor": tumor_view(h.id, h.payload),
                "why": why_matched(payload, h.payload)} for h in ranking.hits]
    g.tumorsearch_results = results
    return {"k": query.k, "filters": query.described(), "query_expansion": ranking.neighbours, "results": results}
