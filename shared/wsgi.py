"""Serve a WSGI application with waitress until SIGTERM or SIGINT (the gateway, the vector store host).

waitress has no signal handling of its own: a signal closes the listening socket, run() then leaves
with EBADF, which is the normal way out here.
"""

from __future__ import annotations

import logging
import signal


def serve_until_signalled(app, host: str, port: int, threads: int, log: logging.Logger) -> None:
    from waitress import create_server  # gateway extra; imported here so `shared` does not need it

    server = create_server(app, host=host, port=port, threads=threads)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.close())
    log.info("serving", extra={"url": f"http://{host}:{port}/"})
    try:
        server.run()
    except OSError:
        pass
    log.info("stopped")
