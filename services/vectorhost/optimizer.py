"""Segment optimisation in the background, after writes go quiet, as a Qdrant server's optimizer does.

The embedded engine writes new points to an appendable segment whose filtered searches are 3-4x slower than
those of an optimised one; `EdgeStore.optimize` rebuilds it. That call holds the interpreter (and the host's
lock) while it runs, so it waits until a collection has had no write for `quiet_s`: a study being indexed or
a bulk load is never interrupted, and a hospital's trickle of studies rarely gives the optimizer work.
While a collection waits or is being optimised its status is "yellow", as on a Qdrant server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

log = logging.getLogger("tumorsearch.vectorhost")


class BackgroundOptimizer:
    def __init__(self, optimize: Callable[[str], bool], lock: AbstractContextManager, quiet_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._optimize = optimize
        self._lock = lock
        self._quiet_s = quiet_s
        self._clock = clock
        self._last_write: dict[str, float] = {}
        self._state = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def written(self, collection: str) -> None:
        """A write to `collection` happened: optimise it once writes have stopped for quiet_s."""
        with self._state:
            self._last_write[collection] = self._clock()
            self._state.notify()

    def pending(self, collection: str) -> bool:
        with self._state:
            return collection in self._last_write

    def start(self) -> BackgroundOptimizer:
        self._thread = threading.Thread(target=self._run, name="segment-optimizer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._state:
            self._stopping = True
            self._state.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)  # an optimisation under way is crash-safe: the engine swaps segments

    def _run(self) -> None:
        while True:
            collection = self._next_due()
            if collection is None:
                return
            self.run_once(collection)

    def _next_due(self) -> str | None:
        """Block until a collection has been quiet for quiet_s (its name) or stop() (None)."""
        with self._state:
            while not self._stopping:
                now = self._clock()
                due = [(t, c) for c, t in self._last_write.items() if now - t >= self._quiet_s]
                if due:
                    return min(due)[1]
                waits = [self._quiet_s - (now - t) for t in self._last_write.values()]
                self._state.wait(timeout=min(waits) if waits else None)
            return None

    def run_once(self, collection: str) -> None:
        with self._state:
            written_at = self._last_write.get(collection)
        started = time.perf_counter()
        try:
            with self._lock:
                rebuilt = self._optimize(collection)
        except Exception:  # a failed optimisation leaves the data as it was: log it, retry after the next write
            log.exception("segment optimisation failed", extra={"collection": collection})
            rebuilt = False
        with self._state:
            if self._last_write.get(collection) == written_at:  # no write arrived meanwhile
                self._last_write.pop(collection, None)
        if rebuilt:
            log.info("segments optimised", extra={"collection": collection,
                                                  "seconds": round(time.perf_counter() - started, 2)})
