"""`tumorsearch listener`: the DICOM listener the PACS sends studies to (docs/listener.md)."""

from __future__ import annotations

import logging
import os
import threading
from functools import partial

import pydicom.config
import redis
from celery import Celery

from services.listener.admission import Admission
from services.listener.arrivals import Arrivals
from services.listener.association_log import AssociationLog
from services.listener.durable_write import clean_incoming
from services.listener.handover import Handover
from services.listener.metrics import ListenerMetrics
from services.listener.outbox import Outbox
from services.listener.peers import PeerPolicy
from services.listener.scp import ListenerParts, build_ae, start_server
from services.listener.settings import ListenerSettings
from services.listener.storage_handler import StorageDependencies
from services.listener.study_state import StudyState
from shared.broker.celery_config import celery_config
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import PROCESS_STUDY, StudyReady
from shared.program import start_program
from shared.signals import stop_event

log = logging.getLogger("tumorsearch.listener")
REDIS_TIMEOUT_S = 2.0  # a C-STORE must not wait longer than this on Redis (the outbox covers it)


def send_study_ready(app: Celery, message: StudyReady) -> None:
    app.send_task(PROCESS_STUDY, kwargs={"message": message.model_dump()}, retry=False)


def command(argv: list[str]) -> int:
    settings = start_program("listener", ListenerSettings, argv, "DICOM listener (Storage SCP). Settings: "
                             "TUMORSEARCH_LISTENER__* (docs/configuration.md).", os.environ)
    _quiet_libraries()
    stopping = stop_event()
    section = settings.listener
    layout = StudyLayout(settings.home)
    layout.ensure()
    clean_incoming(layout.incoming)
    metrics = ListenerMetrics()
    state = StudyState(_redis(settings), section.quiet_period_s)
    outbox = Outbox(layout.outbox, layout.incoming)
    admission = Admission(PeerPolicy.from_entries(section.peers), section.ae_title, section.max_associations,
                          layout.home, section.min_free_disk_mb)
    records = AssociationLog(metrics)
    arrivals = Arrivals(state)
    storage = StorageDependencies(layout, outbox, arrivals, records, admission.disk_low)
    handover = Handover(state, outbox, layout, partial(send_study_ready, _celery(settings)), metrics)
    handover.tick()  # replay the outbox before the first association (when Redis answers)
    threads = _start_background(handover, arrivals, stopping, section.quiet_period_s)
    if section.metrics_port:
        metrics.serve(section.host, section.metrics_port)
    server = start_server(section, build_ae(section), ListenerParts(admission, records, storage))
    log.info("listening", extra={"host": section.host, "port": section.port, "ae_title": section.ae_title,
                                 "metrics_port": section.metrics_port})
    while not stopping.wait(0.5):
        pass
    log.info("stopping")
    server.shutdown()
    for thread in threads:
        thread.join(timeout=5)
    return 0


def _quiet_libraries() -> None:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # it logs every C-STORE at INFO
    # pydicom checks every element it reads against its VR and, at its default (WARN), only warns: nothing
    # is refused either way. The listener validates what it relies on itself (UIDs: storage_handler.py),
    # so the checks were pure cost: ~0.3 ms of the 1.4 ms of CPU per instance (`bench listener`).
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def _redis(settings: ListenerSettings) -> redis.Redis:
    return redis.Redis.from_url(settings.broker.url, socket_timeout=REDIS_TIMEOUT_S,
                                socket_connect_timeout=REDIS_TIMEOUT_S)


def _celery(settings: ListenerSettings) -> Celery:
    app = Celery("tumorsearch-listener", set_as_current=False)
    app.conf.update(celery_config(settings.broker.url, settings.broker.visibility_timeout_s))
    return app


def _start_background(handover: Handover, arrivals: Arrivals, stopping: threading.Event,
                      quiet_period_s: float) -> list[threading.Thread]:
    """The handover loop (quiet studies to the queue) and the arrivals toucher, as daemon threads."""
    threads = [threading.Thread(target=handover.run, args=(stopping, min(1.0, quiet_period_s / 5)),
                                name="handover", daemon=True),
               threading.Thread(target=arrivals.run, args=(stopping,), name="arrivals", daemon=True)]
    for thread in threads:
        thread.start()
    return threads
