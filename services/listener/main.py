"""`tumorsearch listener`: the DICOM listener the PACS sends studies to."""

from __future__ import annotations

import argparse
import logging
import os

from services.listener.scp import HANDLERS, build_ae
from services.listener.settings import ListenerSettings
from shared.config.startup import settings_or_exit
from shared.logs import configure_logging
from shared.signals import stop_event

log = logging.getLogger("tumorsearch.listener")


def command(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="tumorsearch listener",
                            description="DICOM listener (Storage SCP). Settings: TUMORSEARCH_LISTENER__* "
                                        "(docs/configuration.md).").parse_args(argv)
    settings = settings_or_exit(ListenerSettings, os.environ, "listener")
    configure_logging(settings.log.level, settings.log.format, "listener")
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
