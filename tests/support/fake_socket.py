"""A stand-in for the `socket` module whose kernel offers given ports to bind((host, 0)), in order: for the
tests of port pickers (a real kernel offers what it likes, so repeats cannot be provoked)."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from types import SimpleNamespace


def kernel_offering(ports: Iterable[int]) -> SimpleNamespace:
    offered = iter(ports)

    class Probe:
        def __init__(self, *args: object) -> None:
            self.port = 0

        def __enter__(self) -> "Probe":
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(offered)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    return SimpleNamespace(socket=Probe, AF_INET=socket.AF_INET, AF_INET6=socket.AF_INET6,
                           SOCK_STREAM=socket.SOCK_STREAM)
