"""pynetdicom's association server with the limits a hospital network needs before any DICOM is parsed.

- Addresses no peer entry names are disconnected at accept (`verify_request`), and so are connections
  beyond `max_connections`: ten idle sockets then cost ten sockets, not the association limit.
- TLS is negotiated in the connection's own thread with a timeout. pynetdicom wraps the socket in the
  accept loop, where one peer that connects and stays silent would stop every other peer from connecting.
- The PDU length is checked from the 6-byte PDU header, before the body is read. pynetdicom reads (and
  buffers) whatever length the header declares, up to 4 GiB, and checks nothing; docs/listener.md shows it.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime
from typing import Any

from pynetdicom import evt
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from services.listener.responsive import make_responsive
from services.listener.peers import PeerPolicy

log = logging.getLogger("tumorsearch.listener")

# A-ABORT, source: service provider (2), reason: invalid PDU parameter value (6) (PS3.8 9.3.8).
ABORT_INVALID_PDU = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6])


class PduTooLarge(ConnectionError):
    """A peer declared a PDU longer than the listener accepts."""


class CappedAssociationSocket(AssociationSocket):
    """Refuses to read a PDU body longer than `max_pdu_bytes`.

    pynetdicom's reader asks for the 6-byte header, then for exactly the declared body length; a request
    for more than the cap is therefore the body of an oversized PDU. We answer A-ABORT and raise, which
    pynetdicom treats as a closed connection (Evt17): nothing of the body is read.
    """

    max_pdu_bytes: int = 0
    on_oversized: Callable[[int], None] = staticmethod(lambda declared: None)

    def recv(self, nr_bytes: int) -> bytearray:
        if nr_bytes > self.max_pdu_bytes:
            self.on_oversized(nr_bytes)
            try:
                self.socket.sendall(ABORT_INVALID_PDU)
            except OSError:
                pass
            raise PduTooLarge(f"PDU: expected at most {self.max_pdu_bytes} bytes, found {nr_bytes} declared")
        return super().recv(nr_bytes)


class GuardedRequestHandler(RequestHandler):
    server: "GuardedServer"

    def setup(self) -> None:
        self.usable = True
        if self.server.tls_context is None:
            return
        try:
            self.request = self.server.tls_context.wrap_socket(self.request, server_side=True)
        except (OSError, ssl.SSLError) as error:
            log.warning("tls handshake failed", extra={"peer": self.client_address[0],
                                                       "error": type(error).__name__})
            self.usable = False

    def handle(self) -> None:
        if self.usable:
            super().handle()

    def finish(self) -> None:
        self.server.connection_closed()

    def _create_association(self) -> Association:
        """pynetdicom 3.0.4's RequestHandler._create_association, with our socket class (pinned version)."""
        assoc = Association(self.ae, MODE_ACCEPTOR)
        assoc._server = self.server
        assoc.name = f"AcceptorThread@{datetime.now():%Y%m%d%H%M%S}"
        sock = CappedAssociationSocket(assoc, client_socket=self.request)
        sock.max_pdu_bytes = self.server.max_pdu_bytes
        sock.on_oversized = self.server.on_oversized_pdu
        assoc.set_socket(sock)
        make_responsive(assoc)  # lower C-STORE latency (responsive.py)
        assoc.acceptor.maximum_length = self.ae.maximum_pdu_size
        assoc.acceptor.ae_title = self.server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = self.ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = self.ae.implementation_version_name
        assoc.acceptor.supported_contexts = deepcopy(self.server.contexts)
        assoc.requestor.address_info = self.remote
        for event, handlers in self.server._handlers.items():
            if event.is_intervention and handlers:
                assoc.bind(event, *handlers)
            elif isinstance(event, evt.NotificationEvent):
                for handler, args in handlers:
                    assoc.bind(event, handler, args)
        return assoc


class GuardedServer(ThreadedAssociationServer):
    """Build with `ae.make_server(..., server_class=GuardedServer, request_handler=GuardedRequestHandler,
    peers=..., max_connections=..., max_pdu_bytes=..., tls_context=..., on_refused=..., on_oversized_pdu=...)`."""

    def __init__(self, *args: Any, peers: PeerPolicy, max_connections: int, max_pdu_bytes: int,
                 tls_context: ssl.SSLContext | None, on_refused: Callable[[str, str], None],
                 on_oversized_pdu: Callable[[int], None], **kwargs: Any) -> None:
        self.peers = peers
        self.max_connections = max_connections
        self.max_pdu_bytes = max_pdu_bytes
        self.tls_context = tls_context
        self.on_refused = on_refused
        self.on_oversized_pdu = on_oversized_pdu
        self._open = 0
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = self.socket.accept()
        # Accepted sockets are blocking: a silent peer would hold its thread (or the TLS handshake) forever.
        client.settimeout(self.ae.network_timeout)
        return client, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        address = client_address[0]
        if not self.peers.address_allowed(address):
            self.on_refused(address, "address not allowed")
            return False
        with self._open_lock:
            if self._open >= self.max_connections:
                full = True
            else:
                full = False
                self._open += 1
        if full:
            self.on_refused(address, "too many connections")
        return not full

    def connection_closed(self) -> None:
        with self._open_lock:
            self._open -= 1

    @property
    def open_connections(self) -> int:
        return self._open
