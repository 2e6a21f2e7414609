"""The C-STORE success response's command set, encoded directly (PS3.7 9.3.1.2, Implicit VR Little Endian).

Only the plain answer is encoded here: status 0x0000 with the affected SOP class and instance, and
nothing optional. Any other response (a failure status, an error comment) returns None and goes through
pynetdicom's own encoder. tests/unit/test_listener_store_response.py checks the bytes against
pynetdicom's for the same primitive.
"""

from __future__ import annotations

import struct

from pynetdicom.dimse_primitives import C_STORE

LAST_COMMAND_FRAGMENT = b"\x03"  # message control header: command, last fragment (PS3.8 E.2)
C_STORE_RSP, NO_DATA_SET = 0x8001, 0x0101


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def encode_plain_store_response(primitive: C_STORE) -> bytes | None:
    """The encoded command set of a plain success C-STORE-RSP, or None for any other primitive."""
    if primitive.MessageIDBeingRespondedTo is None or primitive.Status != 0x0000:
        return None
    if getattr(primitive, "ErrorComment", None) or getattr(primitive, "OffendingElement", None):
        return None
    sop_class, instance = primitive.AffectedSOPClassUID, primitive.AffectedSOPInstanceUID
    if not sop_class or not instance:
        return None
    body = b"".join((
        _element(0x0002, _uid(str(sop_class))),
        _element(0x0100, struct.pack("<H", C_STORE_RSP)),
        _element(0x0120, struct.pack("<H", primitive.MessageIDBeingRespondedTo)),
        _element(0x0800, struct.pack("<H", NO_DATA_SET)),
        _element(0x0900, struct.pack("<H", 0x0000)),
        _element(0x1000, _uid(str(instance))),
    ))
    return _element(0x0000, struct.pack("<I", len(body))) + body
