"""C-STORE response statuses the listener answers, and the reason each one is counted under.

PS3.4 Annex B.2.3: 0xA7xx "Refused: Out of Resources", 0xA900 "Error: Data Set does not match SOP
Class", 0xCxxx "Error: Cannot understand". Within 0xCxxx we use three codes of our own so a PACS log
says which check failed (pynetdicom itself uses 0xC210-0xC213; we stay clear of them). A peer's
values are never echoed back: the reason names the check, not what was sent.
"""

from __future__ import annotations

from enum import IntEnum


class StoreStatus(IntEnum):
    SUCCESS = 0x0000
    OUT_OF_RESOURCES = 0xA700  # free disk under the watermark, or the write failed: try again later
    SOP_CLASS_MISMATCH = 0xA900  # the dataset's SOPClassUID is not the command's AffectedSOPClassUID
    INTERNAL_ERROR = 0xC000  # an unexpected failure in the listener (logged with its type)
    INVALID_UID = 0xC001  # study, series or SOP instance UID missing or not a conformant UID
    INSTANCE_UID_MISMATCH = 0xC002  # the command's AffectedSOPInstanceUID is not the dataset's
    UNREADABLE_DATASET = 0xC003  # truncated, malformed, or sequences nested too deeply

    @property
    def reason(self) -> str:
        return self.name.lower()
