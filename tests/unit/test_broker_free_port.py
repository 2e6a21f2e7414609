"""`free_port` of shared/broker: the benches choose several ports before starting their servers, so one
process must never be handed the same port twice, even when the kernel offers it again."""

from __future__ import annotations

import socket

import pytest

from shared.broker import embedded
from shared.broker.embedded import BrokerError, free_port
from support.fake_socket import kernel_offering


def test_ports_are_free_and_never_repeated():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # nothing was listening on it


def test_a_kernel_that_keeps_offering_one_port_is_refused(monkeypatch):
    given = free_port()
    monkeypatch.setattr(embedded, "socket", kernel_offering([given] * 50))
    with pytest.raises(BrokerError, match="already handed out"):
        free_port()


def test_promised_ports_are_avoided(monkeypatch):
    monkeypatch.setattr(embedded, "socket", kernel_offering([40001, 40002]))
    monkeypatch.setattr(embedded, "_handed_out", set())
    assert free_port(avoid=[40001]) == 40002
