"""DICOM UIDs as identifiers: validated, and turned into fixed-length keys that are safe as file names.

A UID never becomes part of a path (a peer may send `../../x`); `uid_key` returns a SHA-256 digest of a
UID that passed validation, so a key is 32 hex characters whatever the peer sent, and the same UID
always gives the same key (deduplication across listener replicas needs no shared counter).
"""

from __future__ import annotations

import hashlib
import re

# PS3.5 9.1: digits and dots, components without leading zeros, at most 64 characters.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
MAX_UID_LENGTH = 64


class InvalidUid(ValueError):
    """A value offered as a DICOM UID is not one."""


def validate_uid(value: object, what: str = "UID") -> str:
    """Return `value` if it is a conformant DICOM UID, else raise InvalidUid saying what was found."""
    if not isinstance(value, str):
        raise InvalidUid(f"{what}: expected a DICOM UID string, found {type(value).__name__}")
    if not value or len(value) > MAX_UID_LENGTH:
        raise InvalidUid(f"{what}: expected 1 to {MAX_UID_LENGTH} characters, found {len(value)}")
    if not _UID.match(value):
        # Never echo the value: it came from a peer and may be crafted for a log injection.
        raise InvalidUid(f"{what}: expected digits separated by single dots without leading zeros")
    return value


def uid_key(uid: str, kind: str) -> str:
    """32 hex characters naming `uid` on disk; `kind` ("study", "instance", …) keeps namespaces apart."""
    validate_uid(uid, kind)
    return hashlib.sha256(f"{kind}:{uid}".encode("ascii")).hexdigest()[:32]
