"""Whether an association request is admitted: peer allow-list, called AE title, free disk, association cap.

Decided on the A-ASSOCIATE-RQ (pynetdicom's EVT_REQUESTED), before any presentation context is negotiated.
The cap counts admitted associations only; connections that never send a request are bounded separately
(transport.GuardedServer, `max_connections`) and closed after the ACSE timeout, so they cannot starve it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.listener.durable_write import free_megabytes
from services.listener.peers import PeerPolicy


@dataclass(frozen=True)
class Rejection:
    """A-ASSOCIATE-RJ parameters (PS3.8 9.3.4) and the reason we log."""

    result: int
    source: int
    diagnostic: int
    reason: str


CALLING_AE_NOT_ALLOWED = Rejection(0x01, 0x01, 0x03, "calling AE title not allowed from this address")
CALLED_AE_UNKNOWN = Rejection(0x01, 0x01, 0x07, "called AE title not ours")
DISK_LOW = Rejection(0x02, 0x03, 0x01, "free disk under the watermark")  # transient: temporary congestion
TOO_MANY = Rejection(0x02, 0x03, 0x02, "too many associations")  # transient: local limit exceeded


class Admission:
    def __init__(self, peers: PeerPolicy, ae_title: str, max_associations: int, storage: Path,
                 min_free_mb: float, free_mb: Callable[[Path], float] = free_megabytes) -> None:
        self.peers = peers
        self.ae_title = ae_title.strip()
        self.max_associations = max_associations
        self.storage = storage
        self.min_free_mb = min_free_mb
        self.free_mb = free_mb
        self._admitted: set[int] = set()
        self._lock = threading.Lock()

    def disk_low(self) -> bool:
        return self.free_mb(self.storage) < self.min_free_mb

    def admit(self, key: int, calling_aet: str, called_aet: str, address: str) -> Rejection | None:
        """None to admit (then call `release(key)` when it closes), else why not."""
        if not self.peers.association_allowed(calling_aet, address):
            return CALLING_AE_NOT_ALLOWED
        if called_aet.strip() != self.ae_title:
            return CALLED_AE_UNKNOWN
        if self.disk_low():
            return DISK_LOW
        with self._lock:
            if len(self._admitted) >= self.max_associations:
                return TOO_MANY
            self._admitted.add(key)
        return None

    def release(self, key: int) -> None:
        with self._lock:
            self._admitted.discard(key)
