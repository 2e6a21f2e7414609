"""`tumorsearch echo` (the listener image's health check and the `helm test` echo), run as a real command
against a real listener, a closed port and a peer that accepts TCP but never answers."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from support.listener import LISTENER_AE, TUMORSEARCH

pytestmark = pytest.mark.integration


def run_echo(port: int, *, called: str = LISTENER_AE, calling: str = "HEALTHCHECK", timeout_s: float = 5.0,
             host: str = "127.0.0.1") -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([str(TUMORSEARCH), "echo", "--host", host, "--port", str(port), "--called-ae",
                           called, "--calling-ae", calling, "--timeout", str(timeout_s)],
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line of output; found {len(lines)}:\n{text}"
    return lines[0]


def test_echo_succeeds_on_the_listener_and_fails_clearly_when_rejected(listener_factory, redis_server):
    listener = listener_factory(redis_server.url, peers="HEALTHCHECK@127.0.0.1/32")
    done, _ = run_echo(listener.port)
    assert done.returncode == 0, f"expected exit 0 from a listener that answers; found {done.returncode}\n" \
                                 f"{done.stdout}{done.stderr}"
    assert "Success" in one_line(done.stdout) and done.stderr == ""

    wrong_called, _ = run_echo(listener.port, called="NOTTHELISTENER")
    assert wrong_called.returncode == 1, f"expected exit 1 for a wrong called AE; found {wrong_called.returncode}"
    line = one_line(wrong_called.stderr)
    assert "rejected" in line and "Called AE title not recognised" in line, line

    wrong_calling, _ = run_echo(listener.port, calling="STRANGER")
    assert wrong_calling.returncode == 1
    assert "Calling AE title not recognised" in one_line(wrong_calling.stderr)
    listener.wait_for_log("called AE title not ours")


def test_echo_fails_clearly_on_a_closed_port_and_an_unknown_host(free_port):
    done, took = run_echo(free_port())
    assert done.returncode == 1, f"expected exit 1 on a closed port; found {done.returncode}"
    assert "no connection" in one_line(done.stderr) and done.stdout == ""
    assert took < 5, f"expected a refused connection to fail at once; it took {took:.1f} s"
    # A Service name that does not resolve (a typo in a probe): one line, not a traceback.
    unknown, _ = run_echo(11112, host="no-such-listener.invalid")
    assert unknown.returncode == 1 and "cannot resolve the host" in one_line(unknown.stderr), unknown.stderr


def test_echo_gives_up_on_a_silent_peer_within_its_timeout(free_port):
    """A peer that accepts TCP and never answers the A-ASSOCIATE-RQ (a hung listener): bounded by --timeout."""
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(10)
        done, took = run_echo(port, timeout_s=1.0)
        server.accept()[0].close()  # it did connect: the failure below is the silence, not the port
    assert done.returncode == 1, f"expected exit 1 from a silent peer; found {done.returncode}"
    assert "no association" in one_line(done.stderr)
    assert 1.0 <= took < 8, f"expected to give up about 1 s after the association request; took {took:.1f} s"
