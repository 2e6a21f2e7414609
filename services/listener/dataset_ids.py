"""Read the four identifiers the listener needs from an encoded dataset, without decoding it.

A C-STORE dataset comes from a peer we do not control. pydicom would parse every element before group
0020 (nested sequences recursively, so a dataset nested ten thousand levels deep ends in a RecursionError)
and the pixel data is never needed here. This walker reads top-level elements in order, skips every value
by its length, follows undefined-length sequences with an explicit stack (never recursion, bounded depth)
and stops at the first top-level tag after SeriesInstanceUID. Every step consumes at least 8 bytes, so it
ends on any input; anything it cannot follow raises UnreadableDataset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SOP_CLASS, SOP_INSTANCE, STUDY, SERIES = 0x00080016, 0x00080018, 0x0020000D, 0x0020000E
LAST_NEEDED = SERIES
MAX_DEPTH = 16  # sequences inside sequences; real MR headers stay under 6
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
# Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 7.1.2).
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"


class UnreadableDataset(ValueError):
    """The encoded dataset cannot be walked (truncated, malformed or nested too deeply)."""


@dataclass(frozen=True)
class Encoding:
    implicit: bool
    little: bool

    @classmethod
    def of(cls, transfer_syntax: str) -> "Encoding":
        """Every transfer syntax we accept encodes the dataset as explicit VR little endian except two."""
        return cls(implicit=transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
                   little=transfer_syntax != EXPLICIT_VR_BIG_ENDIAN)


@dataclass(frozen=True)
class DatasetIds:
    """Raw identifier values as found (None when absent); the caller validates them as UIDs."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None


def read_ids(data: bytes, encoding: Encoding) -> DatasetIds:
    found: dict[int, str] = {}
    levels: list[Encoding] = []  # encoding of each open sequence or item; empty = top level
    position = 0
    while position < len(data):
        current = levels[-1] if levels else encoding
        tag, position = _read_tag(data, position, current.little)
        if tag in (ITEM, ITEM_END, SEQUENCE_END):
            position = _delimiter(data, position, tag, current, levels)
            continue
        if not levels and tag > LAST_NEEDED:
            break
        vr, length, position = _read_header(data, position, current)
        if length == UNDEFINED:
            _open_sequence(levels, current, vr)
            continue
        end = position + length
        if end > len(data):
            raise UnreadableDataset(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}): expected {length} bytes of "
                                    f"value, found {len(data) - position}")
        if not levels and tag in (SOP_CLASS, SOP_INSTANCE, STUDY, SERIES):
            found[tag] = _text(data[position:end], tag)
        position = end
    return DatasetIds(found.get(SOP_CLASS), found.get(SOP_INSTANCE), found.get(STUDY), found.get(SERIES))


def _read_tag(data: bytes, position: int, little: bool) -> tuple[int, int]:
    if position + 4 > len(data):
        raise UnreadableDataset(f"expected a 4-byte tag at offset {position}, found {len(data) - position} bytes")
    group, element = struct.unpack_from("<HH" if little else ">HH", data, position)
    return group << 16 | element, position + 4


def _read_header(data: bytes, position: int, encoding: Encoding) -> tuple[bytes, int, int]:
    """(VR or b"", value length, position of the value) of the element whose tag was just read."""
    order = "<" if encoding.little else ">"
    if encoding.implicit:
        return b"", _unpack(data, position, order + "L"), position + 4
    vr = bytes(data[position:position + 2])
    if vr in LONG_VRS:
        return vr, _unpack(data, position + 4, order + "L"), position + 8
    return vr, _unpack(data, position + 2, order + "H"), position + 4


def _unpack(data: bytes, position: int, fmt: str) -> int:
    if position + struct.calcsize(fmt) > len(data):
        raise UnreadableDataset(f"expected an element header at offset {position}, found the end of the data")
    return struct.unpack_from(fmt, data, position)[0]


def _open_sequence(levels: list[Encoding], current: Encoding, vr: bytes) -> None:
    # OB/OW: encapsulated pixel data (an icon inside a sequence), made of items like a sequence.
    if vr not in (b"", b"SQ", b"UN", b"OB", b"OW"):
        raise UnreadableDataset(f"expected an undefined length only on SQ, UN, OB or OW, found VR {vr!r}")
    if len(levels) >= MAX_DEPTH:
        raise UnreadableDataset(f"expected sequences nested at most {MAX_DEPTH // 2} deep, found deeper")
    # PS3.5 6.2.2: an undefined-length UN holds implicit VR little endian, whatever the transfer syntax.
    levels.append(Encoding(implicit=True, little=True) if vr == b"UN" else current)


def _delimiter(data: bytes, position: int, tag: int, current: Encoding, levels: list[Encoding]) -> int:
    """Handle an item or delimiter tag (always a 4-byte length, no VR); returns the next position."""
    length = _unpack(data, position, ("<" if current.little else ">") + "L")
    position += 4
    if not levels:
        raise UnreadableDataset(f"expected a top-level element, found an item tag ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    if tag == ITEM and length == UNDEFINED:
        if len(levels) >= MAX_DEPTH:
            raise UnreadableDataset(f"expected sequences nested at most {MAX_DEPTH // 2} deep, found deeper")
        levels.append(current)
        return position
    if tag == ITEM:
        if position + length > len(data):
            raise UnreadableDataset(f"item: expected {length} bytes, found {len(data) - position}")
        return position + length
    levels.pop()  # end of an undefined-length item or sequence
    return position


def _text(value: bytes, tag: int) -> str:
    try:
        return value.decode("ascii").rstrip("\x00 ")
    except UnicodeDecodeError:
        raise UnreadableDataset(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}): expected ASCII characters of a "
                                "UID, found other bytes") from None
