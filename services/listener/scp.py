"""The DICOM application entity: which services it offers, to whom, with which limits, and its handlers.

pynetdicom's defaults are unsafe on a hospital network (see the brief): Deflated transfer syntax is in
its default list (a decompression bomb), so every context here names its transfer syntaxes explicitly;
peers, the association cap, timeouts and the PDU cap are enforced as described in transport.py and
admission.py. Handlers are `handle_<event>` taking their dependencies explicitly (pynetdicom's handler
arguments), and every failure becomes a DICOM status or an A-ASSOCIATE-RJ.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass

from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import Verification

from services.listener.admission import Admission
from services.listener.association_log import AssociationLog
from services.listener.storage_handler import StorageDependencies, handle_store
from services.listener.transport import GuardedRequestHandler, GuardedServer
from shared.config.programs import ListenerSection

log = logging.getLogger("tumorsearch.listener")

STATUS_SUCCESS = 0x0000
IMPLICIT_VR_LE, EXPLICIT_VR_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
# What the issue lists; never Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99).
STORAGE_TRANSFER_SYNTAXES = (
    IMPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    "1.2.840.10008.1.2.2",     # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, Process 14 SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",     # RLE Lossless
)


def build_ae(section: ListenerSection) -> AE:
    # pynetdicom binds per-PDU and per-message debug log handlers to every association by default; their
    # output is never shown (its logger is at WARNING) but they cost CPU on every PDU. Our own log is
    # association_log.py.
    _config.LOG_HANDLER_LEVEL = "none"
    ae = AE(ae_title=section.ae_title)
    ae.require_called_aet = True
    # pynetdicom counts every connection, associated or not, against this; our own cap on admitted
    # associations is in admission.py, and connections are bounded at accept (transport.py).
    ae.maximum_associations = section.max_connections
    ae.network_timeout = section.network_timeout_s
    ae.acse_timeout = section.acse_timeout_s
    ae.dimse_timeout = section.dimse_timeout_s
    ae.maximum_pdu_size = section.max_pdu_bytes
    ae.add_supported_context(Verification, [IMPLICIT_VR_LE, EXPLICIT_VR_LE])
    for sop_class in section.sop_classes:
        ae.add_supported_context(sop_class, list(STORAGE_TRANSFER_SYNTAXES))
    return ae


@dataclass(frozen=True)
class ListenerParts:
    admission: Admission
    records: AssociationLog
    storage: StorageDependencies


def handle_echo(event: evt.Event) -> int:
    return STATUS_SUCCESS


def handle_conn_open(event: evt.Event, parts: ListenerParts) -> None:
    parts.records.opened(event.assoc)


def handle_requested(event: evt.Event, parts: ListenerParts) -> None:
    """Admit or reject the A-ASSOCIATE-RQ (pynetdicom skips negotiation once we rejected)."""
    assoc = event.assoc
    request = assoc.requestor.primitive
    calling, called = request.calling_ae_title, request.called_ae_title
    parts.records.requested(assoc, calling, called)
    rejection = parts.admission.admit(id(assoc), calling, called, assoc.requestor.address)
    if rejection is None:
        return
    parts.records.result(assoc, f"rejected: {rejection.reason}")
    assoc.acse.send_reject(rejection.result, rejection.source, rejection.diagnostic)
    # What pynetdicom does after its own rejections: wait until the DUL has sent the A-ASSOCIATE-RJ,
    # else the socket is closed under it and the peer sees an abort instead of the reason.
    assoc.kill()


def handle_released(event: evt.Event, parts: ListenerParts) -> None:
    parts.records.result(event.assoc, "released")


def handle_aborted(event: evt.Event, parts: ListenerParts) -> None:
    parts.records.result(event.assoc, "aborted")


def handle_conn_close(event: evt.Event, parts: ListenerParts) -> None:
    parts.admission.release(id(event.assoc))
    parts.records.closed(event.assoc)


def handlers(parts: ListenerParts) -> list:
    return [
        (evt.EVT_C_ECHO, handle_echo),
        (evt.EVT_C_STORE, handle_store, [parts.storage]),
        (evt.EVT_CONN_OPEN, handle_conn_open, [parts]),
        (evt.EVT_REQUESTED, handle_requested, [parts]),
        (evt.EVT_RELEASED, handle_released, [parts]),
        (evt.EVT_ABORTED, handle_aborted, [parts]),
        (evt.EVT_CONN_CLOSE, handle_conn_close, [parts]),
    ]


def tls_context(section: ListenerSection) -> ssl.SSLContext | None:
    if section.tls_certificate is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(section.tls_certificate, section.tls_private_key)
    if section.tls_client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(section.tls_client_ca)
    return context


def start_server(section: ListenerSection, ae: AE, parts: ListenerParts) -> GuardedServer:
    """Bind and serve from a daemon thread; stop with `server.shutdown()`."""
    server = ae.make_server(
        (section.host, section.port), evt_handlers=handlers(parts), server_class=GuardedServer,
        request_handler=GuardedRequestHandler, peers=parts.admission.peers,
        max_connections=section.max_connections, max_pdu_bytes=section.max_pdu_bytes,
        tls_context=tls_context(section), on_refused=parts.records.refused,
        on_oversized_pdu=lambda declared: log.warning("pdu too large", extra={"declared_bytes": declared}))
    ae._servers.append(server)  # what ae.start_server does; server.shutdown() removes it
    threading.Thread(target=server.serve_forever, name="dicom-accept", daemon=True).start()
    return server
