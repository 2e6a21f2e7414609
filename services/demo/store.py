"""Send the demo's studies to the listener as a PACS would: one association, MR Image Storage, C-STORE each file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from services.demo.samples import DemoError

# Success, and the warnings under which the instance was still stored (PS3.4 B.2.3).
STORED = {0x0000, 0xB000, 0xB006, 0xB007}


@dataclass(frozen=True)
class Sent:
    path: Path
    status: int | None  # None: no answer (association aborted)

    @property
    def accepted(self) -> bool:
        return self.status in STORED


def send(files: list[Path], host: str, port: int, calling_ae: str, called_ae: str,
         timeout_s: float = 30.0) -> list[Sent]:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context(MRImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
        raise DemoError(f"C-STORE: the association {calling_ae} -> {called_ae}@{host}:{port} was {why}; see the "
                        "listener's log line for this connection in the system log")
    sent = []
    try:
        for path in files:
            if not assoc.is_established:
                sent.append(Sent(path, None))
                continue
            status = assoc.send_c_store(dcmread(path))
            sent.append(Sent(path, int(status.Status) if status and "Status" in status else None))
    finally:
        if assoc.is_established:
            assoc.release()
    return sent
