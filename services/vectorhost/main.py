"""`tumorsearch vectorstore`: serve the embedded vector store (qdrant-edge) to the worker and the
gateway of one machine, over the part of Qdrant's REST API they use. Not for production: deploy a
Qdrant server there (docs/vectorstore.md)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from importlib.metadata import version

from waitress import create_server

from services.vectorhost.api import create_app
from services.vectorhost.settings import VectorHostSettings
from shared.config.startup import settings_or_exit
from shared.contracts.storage import StudyLayout
from shared.logs import configure_logging
from shared.vectorstore.edge_backend import EdgeStore

log = logging.getLogger("tumorsearch.vectorhost")


def command(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="tumorsearch vectorstore",
                            description="Embedded vector store for one machine. Settings: "
                                        "TUMORSEARCH_VECTORHOST__* (docs/configuration.md).").parse_args(argv)
    settings = settings_or_exit(VectorHostSettings, os.environ, "vectorstore")
    configure_logging(settings.log.level, settings.log.format, "vectorstore")
    layout = StudyLayout(settings.home)
    layout.vectors.mkdir(parents=True, exist_ok=True)
    store = EdgeStore(layout.vectors)
    section = settings.vectorhost
    server = create_server(create_app(store, version("qdrant-client")), host=section.host, port=section.port,
                           threads=4)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.close())
    log.info("serving", extra={"url": f"http://{section.host}:{section.port}", "path": str(layout.vectors)})
    try:
        server.run()
    except OSError:
        pass  # run() raises EBADF once close() pulled the socket away: the normal way out
    finally:
        store.close()  # flushes; the engine's WAL covers a kill before this line
    log.info("stopped")
    return 0
