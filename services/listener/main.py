"""`tumorsearch listener`: the DICOM listener the PACS sends studies to."""

from __future__ import annotations

import logging
import os

from services.listener.scp import HANDLERS, build_ae
from services.listener.settings import ListenerSettings
from shared.program import start_program
from shared.signals import stop_event

log = logging.getLogger("tumorsearch.listener")


def command(argv: list[str]) -> int:
    settings = start_program("listener", ListenerSettings, argv, "DICOM listener (Storage SCP). Settings: "
                             "TUMORSEARCH_LISTENER__* (docs/configuration.md).", os.environ)
    stopping = stop_event()
    section = settings.listener
    ae = build_ae(section)
    server = ae.start_server((section.host, section.port), block=False, evt_handlers=HANDLERS)
    log.info("listening", extra={"host": section.host, "port": section.port, "ae_title": section.ae_title})
    while not stopping.wait(0.5):
        pass
    log.info("stopping")
    server.shutdown()
    return 0
