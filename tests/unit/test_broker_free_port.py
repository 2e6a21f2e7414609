"""`free_port` of shared/broker: the benches choose several ports before starting their servers, so one
process must never be handed the same port twice, even when the kernel offers it again."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from shared.broker import embedded
from shared.broker.embedded import BrokerError, free_port


def test_ports_are_free_and_never_repeated():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # nothing was listening on it


def test_a_kernel_that_keeps_offering_one_port_is_refused(monkeypatch):
    given = free_port()

    class SamePort:
        def __init__(self, *args: object) -> None: ...
        def __enter__(self): return self
        def __exit__(self, *exc: object) -> None: ...
        def bind(self, address: tuple[str, int]) -> None: ...
        def getsockname(self) -> tuple[str, int]: return ("127.0.0.1", given)

    fake_socket_module = SimpleNamespace(socket=SamePort, AF_INET=socket.AF_INET, SOCK_STREAM=socket.SOCK_STREAM)
    monkeypatch.setattr(embedded, "socket", fake_socket_module)
    with pytest.raises(BrokerError, match="already handed out"):
        free_port()


def test_promised_ports_are_avoided(monkeypatch):
    offered = iter([40001, 40002])

    class Offers:
        def __init__(self, *args: object) -> None: ...
        def __enter__(self): return self
        def __exit__(self, *exc: object) -> None: ...
        def bind(self, address: tuple[str, int]) -> None: self.port = next(offered)
        def getsockname(self) -> tuple[str, int]: return ("127.0.0.1", self.port)

    monkeypatch.setattr(embedded, "socket", SimpleNamespace(socket=Offers, AF_INET=0, SOCK_STREAM=0))
    monkeypatch.setattr(embedded, "_handed_out", set())
    assert free_port(avoid=[40001]) == 40002
