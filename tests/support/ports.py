"""Free TCP ports on 127.0.0.1.

Other programs on this machine (and other test runs in parallel) hold common ports, so every server a test starts
gets a port the kernel just told us was free. There is a window between closing our probe socket and the server
binding it; the handed-out set at least stops one process from giving the same port twice.
"""

from __future__ import annotations

import socket
import time

from shared.broker.embedded import free_port  # never the same port twice in one process

LOCALHOST = "127.0.0.1"
__all__ = ["LOCALHOST", "free_port", "port_is_open", "wait_port_closed"]


def port_is_open(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port_closed(port: int, host: str = LOCALHOST, timeout: float = 5.0) -> bool:
    """Wait until nothing accepts on host:port; False if it still does after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_is_open(port, host, timeout=0.2):
            return True
        time.sleep(0.05)
    return False
