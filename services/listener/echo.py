"""`tumorsearch echo`: one DICOM C-ECHO, for health checks (the listener image, `helm test`) and for an admin
checking that a PACS or the listener answers.

    tumorsearch echo --host H --port P --called-ae AE --calling-ae AE [--timeout S]

Exit 0 when the peer answers the C-ECHO with Success, 1 otherwise, with one line saying what happened (rejected
and why, no connection, no answer in time); 2 for bad arguments. Pure arguments, no settings: a health check must
not depend on the environment of the program it checks. Nothing of a dataset is involved, so nothing can leak.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

EXIT_SUCCESS, EXIT_FAILED = 0, 1
STATUS_SUCCESS = 0x0000
IMPLICIT_VR_LE, EXPLICIT_VR_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
# PS3.5 6.2: an AE title is 1-16 characters of the default repertoire without backslash, not only spaces.
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")


def _ae_title(text: str) -> str:
    if not _AE_TITLE.fullmatch(text) or not text.strip():
        raise argparse.ArgumentTypeError(f"expected an AE title of 1-16 printable characters without '\\'; "
                                         f"found {text!r}")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 1..65535; found {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected seconds, more than 0 and at most 3600; found {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tumorsearch echo",
        description="Send one DICOM C-ECHO (Verification) and exit 0 when the peer answers Success, else 1.")
    p.add_argument("--host", required=True, help="host name or address of the peer (listener or PACS)")
    p.add_argument("--port", type=_port, required=True, help="its DICOM port, e.g. 11112")
    p.add_argument("--called-ae", type=_ae_title, required=True, help="the peer's AE title, e.g. TUMORSEARCH")
    p.add_argument("--calling-ae", type=_ae_title, required=True,
                   help="our AE title; the listener must allow it from this address (TUMORSEARCH_LISTENER__PEERS)")
    p.add_argument("--timeout", type=_seconds, default=10.0,
                   help="seconds allowed for each step: connect, association, C-ECHO answer (default 10)")
    return p


def echo(host: str, port: int, called_ae: str, calling_ae: str, timeout_s: float) -> tuple[bool, str]:
    """(whether the peer answered Success, one line saying what happened)."""
    peer = f"{called_ae}@{host}:{port}"
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification, [EXPLICIT_VR_LE, IMPLICIT_VR_LE])
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    connected: list[bool] = []  # EVT_CONN_OPEN tells "no connection" from "connected, then nothing"
    started = time.monotonic()
    try:
        assoc = ae.associate(host, port, ae_title=called_ae,
                             evt_handlers=[(evt.EVT_CONN_OPEN, lambda event: connected.append(True))])
    except OSError as error:  # pynetdicom resolves the host name before connecting
        ae.shutdown()
        return False, f"C-ECHO {peer}: cannot resolve the host ({error.strerror or error}); check the name"
    try:
        if not assoc.is_established:
            return False, _no_association(assoc, peer, bool(connected), timeout_s)
        status = assoc.send_c_echo()
        if "Status" not in status:
            return False, (f"C-ECHO {peer}: expected an answer; found none within {timeout_s:g} s "
                           f"(association {'aborted' if assoc.is_aborted else 'closed or timed out'})")
        code = int(status.Status)
        if code != STATUS_SUCCESS:
            return False, f"C-ECHO {peer}: expected status 0x0000 (Success); found 0x{code:04X}"
        return True, f"C-ECHO {peer}: Success in {(time.monotonic() - started) * 1000:.0f} ms"
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def _no_association(assoc: Association, peer: str, connected: bool, timeout_s: float) -> str:
    """Why no association was established, in words an operator can act on."""
    answer = assoc.acceptor.primitive  # the peer's A-ASSOCIATE answer; None when it never gave one
    if assoc.is_rejected and answer is not None:
        return (f"C-ECHO {peer}: association rejected ({answer.result_str}, source: {answer.source_str}, "
                f"reason: {answer.reason_str}); check the called AE title and that the listener's peers allow "
                f"this calling AE from this address")
    if answer is not None and answer.result == 0x00:
        return f"C-ECHO {peer}: association accepted but Verification refused (no presentation context)"
    if not connected:
        return (f"C-ECHO {peer}: no connection (refused, unreachable, or no answer within {timeout_s:g} s); "
                f"check the host, the port and the network path")
    return (f"C-ECHO {peer}: connected but no association (closed by the peer, e.g. an address not in its "
            f"allow-list, or no answer within {timeout_s:g} s)")


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    # pynetdicom logs failed connections at ERROR; the one line below says the same in words to act on.
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    ok, line = echo(args.host, args.port, args.called_ae, args.calling_ae, args.timeout)
    print(line, file=sys.stdout if ok else sys.stderr)
    return EXIT_SUCCESS if ok else EXIT_FAILED
