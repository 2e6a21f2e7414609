"""POST /api/v1/admin/reindex/{study_uid}: process a received study again (admin only), e.g. after a new
checkpoint. The study is handed to the worker by task name, like the listener does (shared/reprocessing.py);
the worker is idempotent, so re-indexing twice is harmless. The whole archive: `tumorsearch reindex`."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from werkzeug.exceptions import NotFound

from services.gateway.api import checked_uid, deps
from services.gateway.auth import requires_admin
from shared.contracts.tasks import PROCESS_STUDY
from shared.reprocessing import reprocessing_message
from shared.study_status_store import StudyStatusStore


reindex = Blueprint("reindex", __name__, url_prefix="/api/v1/admin")


@reindex.post("/reindex/<study_uid>")
@requires_admin
def reindex_study(study_uid: str):
    study_uid = checked_uid(study_uid, "study UID")
    previous = StudyStatusStore(deps().redis).get(study_uid)
    message = reprocessing_message(deps().layout, deps().redis, study_uid, previous)
    if message is None:
        raise NotFound("study: no stored instances of this study to re-index")
    deps().send_task(PROCESS_STUDY, {"message": message.model_dump()})
    audit = g.get("caller")
    return jsonify({"study_instance_uid": study_uid, "handover": message.handover,
                    "instances": message.instance_count,
                    "requested_by": audit.name if audit else None}), 202
