"""Turn SIGTERM and SIGINT into one event a program's main loop waits on, so every program stops the same
way under `tumorsearch run`, a terminal's Ctrl-C and Kubernetes."""

from __future__ import annotations

import signal
import threading


def stop_event() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT. Call from the main thread only."""
    event = threading.Event()

    def _handle(signum, _frame):
        event.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    return event
