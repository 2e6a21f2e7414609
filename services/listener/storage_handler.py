"""C-STORE: check the few identifiers we need, write the encoded dataset durably, record the study as
owed a hand-over, and only then answer success.

The dataset is never decoded (pixels are the worker's business): the bytes pynetdicom received are
written as they came, after the file meta information. Every failure becomes a DICOM status (statuses.py),
never an exception, which pynetdicom would turn into an anonymous 0xC211.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pynetdicom import evt

from services.listener.arrivals import Arrivals
from services.listener.association_log import AssociationLog
from services.listener.dataset_ids import Encoding, UnreadableDataset, read_ids
from services.listener.durable_write import write_durably
from services.listener.file_meta import file_header
from services.listener.outbox import Outbox
from services.listener.statuses import StoreStatus
from shared.contracts.storage import StudyLayout
from shared.contracts.uids import InvalidUid, validate_uid

log = logging.getLogger("tumorsearch.listener")


@dataclass(frozen=True)
class StorageDependencies:
    layout: StudyLayout
    outbox: Outbox
    arrivals: Arrivals
    records: AssociationLog
    disk_low: Callable[[], bool]


class Refused(Exception):
    def __init__(self, status: StoreStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def handle_store(event: evt.Event, deps: StorageDependencies) -> int:
    try:
        size = store_instance(event, deps)
    except Refused as refusal:
        return _refuse(event, deps, refusal.status, str(refusal))
    except Exception as error:  # noqa: BLE001 - a failure must be a status, and the listener must live on
        log.exception("c-store failed unexpectedly", extra={"error": type(error).__name__})
        return _refuse(event, deps, StoreStatus.INTERNAL_ERROR, type(error).__name__)
    deps.records.stored(event.assoc, size)
    return StoreStatus.SUCCESS


def store_instance(event: evt.Event, deps: StorageDependencies) -> int:
    """Store the instance of a C-STORE request durably; returns its size or raises Refused."""
    if deps.disk_low():
        raise Refused(StoreStatus.OUT_OF_RESOURCES, "free disk under the watermark")
    dataset = event.encoded_dataset(include_meta=False)
    study_uid, instance_uid, sop_class_uid = checked_uids(event, dataset)
    header = file_header(sop_class_uid, instance_uid, str(event.context.transfer_syntax))
    try:
        write_durably((header, dataset), deps.layout.instance_path(study_uid, instance_uid), deps.layout.incoming)
        deps.outbox.mark_pending(study_uid)
    except OSError as error:
        raise Refused(StoreStatus.OUT_OF_RESOURCES, f"write failed: {error.strerror or type(error).__name__}")
    deps.arrivals.note(study_uid)  # Redis is touched off the acknowledgement path (arrivals.py)
    return len(header) + len(dataset)


def checked_uids(event: evt.Event, dataset: bytes) -> tuple[str, str, str]:
    """(study UID, SOP instance UID, SOP class UID) after every check on the identifiers; raises Refused."""
    request = event.request
    encoding = Encoding.of(str(event.context.transfer_syntax))
    try:
        ids = read_ids(dataset, encoding)
    except UnreadableDataset as error:
        raise Refused(StoreStatus.UNREADABLE_DATASET, str(error)) from None
    try:
        study_uid = validate_uid(ids.study_instance_uid, "StudyInstanceUID")
        validate_uid(ids.series_instance_uid, "SeriesInstanceUID")
        instance_uid = validate_uid(ids.sop_instance_uid, "SOPInstanceUID")
        command_uid = validate_uid(str(request.AffectedSOPInstanceUID or ""), "AffectedSOPInstanceUID")
        sop_class_uid = validate_uid(str(request.AffectedSOPClassUID or ""), "AffectedSOPClassUID")
    except InvalidUid as error:
        raise Refused(StoreStatus.INVALID_UID, str(error)) from None
    if command_uid != instance_uid:
        raise Refused(StoreStatus.INSTANCE_UID_MISMATCH, "AffectedSOPInstanceUID: expected the dataset's "
                      "SOPInstanceUID, found another UID")
    if ids.sop_class_uid != sop_class_uid:
        raise Refused(StoreStatus.SOP_CLASS_MISMATCH, "SOPClassUID: expected the command's "
                      "AffectedSOPClassUID, found another value")
    return study_uid, instance_uid, sop_class_uid


def _refuse(event: evt.Event, deps: StorageDependencies, status: StoreStatus, detail: str) -> int:
    deps.records.rejected_instance(event.assoc, status.reason)
    log.warning("c-store refused", extra={"status": f"0x{status:04X}", "reason": status.reason, "detail": detail,
                                          "peer": event.assoc.requestor.address})
    return status
