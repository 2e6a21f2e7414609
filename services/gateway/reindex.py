"""POST /api/v1/admin/reindex/{study_uid}: process a received study again (admin only), e.g. after a new
checkpoint. The study is handed to the worker by task name, like the listener does; the worker is
idempotent, so re-indexing twice is harmless."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from werkzeug.exceptions import NotFound

from services.gateway.api import checked_uid, deps
from services.gateway.auth import requires_admin
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import PROCESS_STUDY, StudyReady
from shared.study_status_store import StudyStatusStore


reindex = Blueprint("reindex", __name__, url_prefix="/api/v1/admin")


@reindex.post("/reindex/<study_uid>")
@requires_admin
def reindex_study(study_uid: str):
    study_uid = checked_uid(study_uid, "study UID")
    folder = deps().layout.study_dir(study_uid)
    count = len(list(folder.glob("*.dcm"))) if folder.is_dir() else 0
    if count == 0:
        raise NotFound("study: no stored instances of this study to re-index")
    statuses = StudyStatusStore(deps().redis)
    previous: StudyStatus | None = statuses.get(study_uid)
    handover = (previous.handover + 1) if previous is not None else 1
    message = StudyReady(study_instance_uid=study_uid, location=deps().layout.study_location(study_uid),
                         instance_count=count, handover=handover)
    deps().send_task(PROCESS_STUDY, {"message": message.model_dump()})
    audit = g.get("caller")
    return jsonify({"study_instance_uid": study_uid, "handover": handover, "instances": count,
                    "requested_by": audit.name if audit else None}), 202
