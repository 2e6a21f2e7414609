"""`tumorsearch vectorstore`: serve the embedded vector store (qdrant-edge) to the worker and the
gateway of one machine, over the part of Qdrant's REST API they use. Not for production: deploy a
Qdrant server there (docs/vectorstore.md)."""

from __future__ import annotations

import logging
import os
from importlib.metadata import version

from services.vectorhost.api import create_app
from services.vectorhost.settings import VectorHostSettings
from shared.contracts.storage import StudyLayout
from shared.program import start_program
from shared.vectorstore.factory import open_embedded
from shared.wsgi import serve_until_signalled

log = logging.getLogger("tumorsearch.vectorhost")


def command(argv: list[str]) -> int:
    settings = start_program("vectorstore", VectorHostSettings, argv, "Embedded vector store for one machine. "
                             "Settings: TUMORSEARCH_VECTORHOST__* (docs/configuration.md).", os.environ)
    layout = StudyLayout(settings.home)
    layout.vectors.mkdir(parents=True, exist_ok=True)
    store = open_embedded(layout.vectors)
    try:
        section = settings.vectorhost
        app = create_app(store, version("qdrant-client"))
        optimizer = app.extensions["optimizer"].start()
        for name in store.collection_names():  # written by an earlier run, maybe never optimised
            optimizer.written(name)
        try:
            serve_until_signalled(app, section.host, section.port, 4, log)
        finally:
            optimizer.stop()
    finally:
        store.close()  # flushes; the engine's write-ahead log covers a kill before this line
    return 0
