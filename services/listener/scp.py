"""The DICOM application entity: which services it offers, to whom, and with which limits.

Only Verification for now; storage of studies comes with the listener's own issue. The safety limits
that do not depend on storage are set here already (called AE title required, association cap,
timeouts) because pynetdicom's defaults are unsafe on a hospital network (see the brief).
"""

from __future__ import annotations

import logging

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from services.listener.settings import ListenerSection

log = logging.getLogger("tumorsearch.listener")

STATUS_SUCCESS = 0x0000


def build_ae(section: ListenerSection) -> AE:
    ae = AE(ae_title=section.ae_title)
    ae.require_called_aet = True
    ae.maximum_associations = section.max_associations
    ae.network_timeout = section.network_timeout_s
    ae.acse_timeout = section.acse_timeout_s
    ae.dimse_timeout = section.dimse_timeout_s
    ae.add_supported_context(Verification)
    return ae


def handle_echo(event: evt.Event) -> int:
    assoc = event.assoc
    log.info("c-echo", extra={"peer": assoc.requestor.address, "calling_aet": assoc.requestor.ae_title})
    return STATUS_SUCCESS


def handle_released(event: evt.Event) -> None:
    log.info("association ended", extra={"peer": event.assoc.requestor.address,
                                         "calling_aet": event.assoc.requestor.ae_title})


HANDLERS = [(evt.EVT_C_ECHO, handle_echo), (evt.EVT_RELEASED, handle_released)]
