"""Bad peers and bad data: each is answered with the proper status, rejection or abort, and the listener
lives on (a legitimate C-ECHO still succeeds afterwards)."""

from __future__ import annotations

import io
import socket
import struct
import time
from pathlib import Path

import psutil
import pydicom
import pytest
from pydicom.filereader import _read_file_meta_info, read_preamble
from pynetdicom import AE
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import MRImageStorage

from services.bench.listener import synthesize_series
from support.listener import LISTENER_AE

pytestmark = pytest.mark.integration


def echo_ok(dcmtk, listener, calling_aet: str = "ECHOSCU") -> bool:
    return dcmtk.echoscu(listener.port, called_aet=LISTENER_AE, calling_aet=calling_aet).returncode == 0


def test_unknown_calling_ae_wrong_called_ae_and_foreign_address_are_refused(listener_factory, redis_server, dcmtk):
    listener = listener_factory(redis_server.url, peers="GOOD@127.0.0.1")
    bad_calling = dcmtk.echoscu(listener.port, called_aet=LISTENER_AE, calling_aet="STRANGER")
    assert bad_calling.returncode != 0 and "Rejected" in bad_calling.stderr + bad_calling.stdout
    bad_called = dcmtk.echoscu(listener.port, called_aet="SOMEONE", calling_aet="GOOD")
    assert bad_called.returncode != 0 and "Rejected" in bad_called.stderr + bad_called.stdout
    assert echo_ok(dcmtk, listener, "GOOD")
    log = listener.wait_for_log("called AE title not ours")
    assert "calling AE title not allowed from this address" in log

    elsewhere = listener_factory(redis_server.url, peers="GOOD@10.0.0.0/8")
    refused = dcmtk.echoscu(elsewhere.port, called_aet=LISTENER_AE, calling_aet="GOOD")
    assert refused.returncode != 0, "expected a connection from an address not allowed to fail"
    elsewhere.wait_for_log("refused: address not allowed")


def crafted_file(folder: Path, *, command_uid: str, dataset_uid: str, study_uid: str | None = None) -> Path:
    """A part-10 file whose meta (what pynetdicom puts in the C-STORE command) and dataset may disagree."""
    path = synthesize_series(folder, slices=1, size=16)[0]
    ds = pydicom.dcmread(path)
    ds.file_meta.MediaStorageSOPInstanceUID = command_uid
    ds.SOPInstanceUID = dataset_uid
    if study_uid is not None:
        ds.StudyInstanceUID = study_uid
    ds.save_as(path)
    return path


def send_file(port: int, path: Path) -> int:
    """C-STORE the file's dataset bytes exactly as they are (pynetdicom's send_c_store would decode and
    re-encode them), with the command's UIDs taken from the file meta."""
    raw = path.read_bytes()
    stream = io.BytesIO(raw)
    read_preamble(stream, False)
    meta = _read_file_meta_info(stream)
    ae = AE(ae_title="GOOD")
    ae.add_requested_context(MRImageStorage, [str(meta.TransferSyntaxUID)])
    assoc = ae.associate("127.0.0.1", port, ae_title=LISTENER_AE)
    assert assoc.is_established
    try:
        request = C_STORE()
        request.MessageID, request.Priority = 1, 2
        request.AffectedSOPClassUID = MRImageStorage
        request.AffectedSOPInstanceUID = meta.MediaStorageSOPInstanceUID
        request.DataSet = io.BytesIO(raw[stream.tell():])
        # As send_c_store does: pause the association's reactor, else it takes the response off the queue.
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.001)
        assoc.dimse.send_msg(request, assoc.accepted_contexts[0].context_id)
        _, response = assoc.dimse.get_msg(block=True)
        assoc._reactor_checkpoint.set()
        return int(response.Status)
    finally:
        assoc.release()


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("dataset", "../../x", 0xC001), ("dataset", "1.2/3", 0xC001), ("dataset", "1.2\x003", 0xC001),
    ("dataset", "1." + "2" * 70, 0xC001), ("study", "../../etc", 0xC001), ("command", "1.2.3.4", 0xC002),
])
def test_bad_uids_are_refused_and_nothing_is_written(listener_factory, redis_server, dcmtk, tmp_path,
                                                     field, value, expected):
    listener = listener_factory(redis_server.url)
    good = "1.2.826.0.1.3680043.8.498.1"
    uids = {"command_uid": good, "dataset_uid": good}
    if field == "dataset":
        uids = {"command_uid": good, "dataset_uid": value}
    elif field == "study":
        uids["study_uid"] = value
    else:
        uids["command_uid"] = value
    status = send_file(listener.port, crafted_file(tmp_path / "crafted", **uids))
    assert status == expected, f"expected status 0x{expected:04X}; found 0x{status:04X}"
    written = [p for p in listener.home.rglob("*") if p.is_file()]
    assert written == [], f"expected nothing written for a refused instance; found {written}"
    assert echo_ok(dcmtk, listener)


def nested_sequence(depth: int, undefined_length: bool) -> bytes:
    """ReferencedImageSequence (0008,1140) nested `depth` deep, explicit VR LE, built as bytes (pydicom
    itself cannot write, nor read, such depth: RecursionError)."""
    body = struct.pack("<HH2sH", 0x0008, 0x0100, b"SH", 2) + b"X "  # CodeValue in the innermost item
    for _ in range(depth):
        if undefined_length:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
            body = (struct.pack("<HH2sHL", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF) + item
                    + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
        else:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body
            body = struct.pack("<HH2sHL", 0x0008, 0x1140, b"SQ", 0, len(item)) + item
    return body


def with_element_before_patient_name(path: Path, element: bytes) -> Path:
    raw = path.read_bytes()
    at = raw.index(struct.pack("<HH2s", 0x0010, 0x0010, b"PN"))  # after Modality (0008,0060)
    path.write_bytes(raw[:at] + element + raw[at:])
    return path


@pytest.mark.parametrize(("undefined_length", "expected"), [(True, 0xC003), (False, 0x0000)])
def test_deeply_nested_sequences(listener_factory, redis_server, dcmtk, tmp_path, undefined_length, expected):
    """Undefined lengths must be walked, so depth is capped (0xC003); defined ones are skipped unread."""
    listener = listener_factory(redis_server.url)
    path = synthesize_series(tmp_path / "nested", slices=1, size=16)[0]
    with_element_before_patient_name(path, nested_sequence(5000, undefined_length))
    assert send_file(listener.port, path) == expected
    assert echo_ok(dcmtk, listener)


def test_declared_huge_pdu_is_aborted_before_its_body_is_read(listener_factory, redis_server, dcmtk):
    listener = listener_factory(redis_server.url, max_pdu_bytes=1048576)
    before = psutil.Process(listener.process.pid).memory_info().rss
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as peer:
        peer.sendall(struct.pack(">BBL", 0x01, 0, 0xFFFFFFF0))  # A-ASSOCIATE-RQ declaring ~4 GiB
        sent, reply = 0, b""
        peer.settimeout(0.2)
        deadline = time.monotonic() + 5
        while not reply and time.monotonic() < deadline:
            try:
                peer.sendall(b"\0" * 65536)
                sent += 65536
                reply = peer.recv(16)
            except TimeoutError:
                continue
            except OSError:
                break
    assert reply[:1] == b"\x07", f"expected an A-ABORT PDU; found {reply!r} after sending {sent} bytes"
    growth = psutil.Process(listener.process.pid).memory_info().rss - before
    assert growth < 32 * 1024 * 1024, f"expected the body not buffered; found RSS grew by {growth} bytes"
    assert echo_ok(dcmtk, listener)


def test_ten_idle_sockets_do_not_starve_a_legitimate_echo(listener_factory, redis_server, dcmtk):
    listener = listener_factory(redis_server.url, max_associations=2, max_connections=16)
    idle = [socket.create_connection(("127.0.0.1", listener.port), timeout=5) for _ in range(10)]
    try:
        time.sleep(0.3)
        assert echo_ok(dcmtk, listener), f"expected the echo to pass beside 10 idle sockets\n{listener.log()}"
    finally:
        for sock in idle:
            sock.close()


def test_disk_under_the_watermark_refuses_associations(listener_factory, redis_server, dcmtk):
    listener = listener_factory(redis_server.url, min_free_disk_mb=1_000_000_000)
    done = dcmtk.echoscu(listener.port, called_aet=LISTENER_AE)
    assert done.returncode != 0 and "Rejected" in done.stderr + done.stdout
    listener.wait_for_log("free disk under the watermark")
