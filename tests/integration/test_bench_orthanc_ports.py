"""`bench system`'s PACS when its port is taken: another program answering there (with bytes that are not
HTTP, as in a 2026-12-06 CI run) is never mistaken for Orthanc, and the bench starts Orthanc on fresh ports.
Real Orthanc (Debian's /usr/sbin/Orthanc)."""

from __future__ import annotations

import socket
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest

from services.bench.orthanc import OrthancPacs
from services.bench.system import _started_pacs
from shared.broker.embedded import free_port

pytestmark = pytest.mark.integration

GARBAGE = bytes(range(128, 256)) + b"\r\n"


class ForeignServer:
    """Holds a port on 127.0.0.1 and answers every connection with bytes that are not HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(GARBAGE)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def foreign():
    server = ForeignServer()
    yield server
    server.close()


def test_a_foreign_server_on_the_port_is_reported_not_taken_for_orthanc(tmp_path: Path, foreign: ForeignServer):
    pacs = OrthancPacs(tmp_path, foreign.port, free_port(), ("TUMORSEARCH", free_port()))
    with pytest.raises(RuntimeError, match="it exited") as refused:
        pacs.__enter__()
    assert pacs.process is not None and pacs.process.poll() is not None, "expected Orthanc stopped"
    assert foreign.connections >= 1, "expected the probe to have met the foreign server first"
    assert str(foreign.port) in str(refused.value)
    assert "orthanc.log" in str(refused.value)


def test_the_bench_starts_orthanc_on_fresh_ports_when_its_port_is_taken(tmp_path: Path, foreign: ForeignServer):
    ports = {"listener": free_port(), "pacs_http": foreign.port, "pacs_dicom": free_port()}
    with ExitStack() as stack:
        pacs = _started_pacs(stack, tmp_path, ports)
        assert ports["pacs_http"] != foreign.port
        assert pacs.request("GET", "/system")["DicomPort"] == ports["pacs_dicom"]
        process = pacs.process
    assert process is not None and process.poll() is not None, "expected Orthanc stopped with the stack"
    assert (tmp_path / "pacs-1" / "orthanc.log").exists() and (tmp_path / "pacs-2" / "orthanc.log").exists()
