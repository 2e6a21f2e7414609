"""One structured log line per connection: peer, AE titles, instances, bytes, duration, result.

Counts and identifiers of the peer only; never an attribute of a dataset (no patient data), never a UID a
peer sent (it may be crafted). The line is written when the connection closes, whatever ended it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from services.listener.metrics import ListenerMetrics

log = logging.getLogger("tumorsearch.listener")


@dataclass
class AssociationRecord:
    peer: str
    started: float = field(default_factory=time.monotonic)
    calling_aet: str = ""
    called_aet: str = ""
    instances: int = 0
    bytes: int = 0
    rejected: Counter = field(default_factory=Counter)
    result: str = "closed"  # until an event says otherwise (released, aborted, rejected: …)


class AssociationLog:
    def __init__(self, metrics: ListenerMetrics) -> None:
        self.metrics = metrics
        self._records: dict[int, AssociationRecord] = {}
        self._lock = threading.Lock()

    def _record(self, assoc) -> AssociationRecord:
        with self._lock:
            record = self._records.get(id(assoc))
            if record is None:
                record = self._records[id(assoc)] = AssociationRecord(peer=str(assoc.requestor.address))
            return record

    def opened(self, assoc) -> None:
        self._record(assoc)

    def requested(self, assoc, calling_aet: str, called_aet: str) -> None:
        record = self._record(assoc)
        record.calling_aet, record.called_aet = calling_aet, called_aet

    def result(self, assoc, result: str) -> None:
        self._record(assoc).result = result

    def stored(self, assoc, size: int) -> None:
        record = self._record(assoc)
        record.instances += 1
        record.bytes += size
        self.metrics.instances_received.inc()
        self.metrics.bytes_received.inc(size)

    def rejected_instance(self, assoc, reason: str) -> None:
        self._record(assoc).rejected[reason] += 1
        self.metrics.instances_rejected.labels(reason).inc()

    def closed(self, assoc) -> AssociationRecord | None:
        with self._lock:
            record = self._records.pop(id(assoc), None)
        if record is None:
            return None
        duration = time.monotonic() - record.started
        kind = record.result.split(":", 1)[0]
        self.metrics.associations.labels(kind).inc()
        self.metrics.association_seconds.observe(duration)
        log.info("association", extra={
            "peer": record.peer, "calling_aet": record.calling_aet, "called_aet": record.called_aet,
            "instances": record.instances, "bytes": record.bytes, "rejected": dict(record.rejected),
            "duration_s": round(duration, 3), "result": record.result})
        return record

    def refused(self, address: str, reason: str) -> None:
        """A connection closed at accept (not allowed, too many): no association, still one line."""
        self.metrics.associations.labels("refused").inc()
        log.warning("association", extra={"peer": address, "instances": 0, "bytes": 0, "duration_s": 0.0,
                                          "result": f"refused: {reason}"})
