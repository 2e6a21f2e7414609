"""Lower the response latency of pynetdicom's polling reactors without burning CPU on idle associations.

pynetdicom 3.0.4 (pinned) runs two polling loops per association: the DUL thread sleeps
`_run_loop_delay` (1 ms) whenever it had nothing to do, and the association thread sleeps 1 ms before
each non-blocking look for a decoded DIMSE message. A C-STORE therefore waits for up to three of those
sleeps (request noticed, message picked up, response sent): ~2-3 ms of the ~5 ms per instance measured,
more than the two fsyncs. Two small subclasses, swapped in by transport.py when an association is created:

- `ResponsiveDUL` polls every 0.1 ms while the association is busy (a PDU or primitive in the last
  200 ms) and every 1 ms (pynetdicom's own pace) once it is idle, so idle associations cost what they
  did before.
- `ResponsiveDIMSE` turns the reactor's non-blocking look into a short blocking wait on the message
  queue: a message is served the moment it is decoded instead of at the next 1 ms tick. Release and
  abort checks run after each wait, so they are noticed within `REACTOR_WAIT_S`. It also sends the
  plain C-STORE success response (the one answer sent per instance) through store_response.py, whose
  bytes equal pynetdicom's, without pydicom's generic encoder (~0.5 ms of CPU per instance).
- The acceptor reactor's own 1 ms nap before each look is skipped (`_ReactorClock`; the blocking wait above
  replaces it), and a release or abort request wakes that wait (`WakingQueue`): 450 -> 550 instances/s and
  48 -> 28 ms for a one-instance association in `bench listener`'s setting.
"""

from __future__ import annotations

import queue
import time

import pynetdicom
import pynetdicom.association
from pynetdicom import evt
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.dul import DULServiceProvider

from services.listener.store_response import LAST_COMMAND_FRAGMENT, encode_plain_store_response

BUSY_DELAY_S, IDLE_DELAY_S = 0.0001, 0.001
BUSY_FOR_S = 0.2
REACTOR_WAIT_S = 0.02


class ResponsiveDUL(DULServiceProvider):
    _busy_until = 0.0

    @property
    def _run_loop_delay(self) -> float:
        return BUSY_DELAY_S if time.monotonic() < self._busy_until else IDLE_DELAY_S

    @_run_loop_delay.setter
    def _run_loop_delay(self, _value: float) -> None:
        """pynetdicom's __init__ sets its constant; the pace is decided above."""

    def _busy(self, active: bool) -> bool:
        if active:
            self._busy_until = time.monotonic() + BUSY_FOR_S
        return active

    def _is_transport_event(self) -> bool:
        return self._busy(super()._is_transport_event())

    def _process_recv_primitive(self) -> bool:
        return self._busy(super()._process_recv_primitive())


class ResponsiveDIMSE(DIMSEServiceProvider):
    def get_msg(self, block: bool = False):  # noqa: ANN201 - pynetdicom's own signature
        if block:
            return super().get_msg(block=True)
        try:
            return self.msg_queue.get(timeout=REACTOR_WAIT_S)
        except queue.Empty:
            return None, None

    def send_msg(self, primitive, context_id: int) -> None:  # noqa: ANN001 - pynetdicom's own signature
        encoded = encode_plain_store_response(primitive) if isinstance(primitive, C_STORE) else None
        fits = encoded is not None and (not self.maximum_pdu_size or len(encoded) + 6 <= self.maximum_pdu_size)
        if not fits or self.assoc.get_handlers(evt.EVT_DIMSE_SENT):
            super().send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, LAST_COMMAND_FRAGMENT + encoded))
        self.dul.send_pdu(pdata)


class WakingQueue(queue.Queue):
    """The DUL's queue of ACSE primitives for the association (release and abort requests among them) that
    also wakes the reactor's wait on the DIMSE message queue, so a release is answered at once instead of
    when that wait times out (it was up to REACTOR_WAIT_S = 20 ms per association)."""

    def __init__(self, wake) -> None:  # noqa: ANN001 - a callable of no arguments
        super().__init__()
        self._wake = wake

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:  # noqa: ANN001
        super().put(item, block, timeout)
        self._wake()


class _ReactorClock:
    """What pynetdicom.association sees as the `time` module: the real one, minus the acceptor reactor's
    1 ms nap before each look for a message (association.py, `_run_reactor`, pynetdicom 3.0.4). With
    ResponsiveDIMSE that look is a blocking wait on the message queue, so the nap only delayed the next
    C-STORE, by up to 1 ms each (a third of the listener's time per instance in `bench listener`)."""

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        if seconds != REACTOR_NAP_S:
            time.sleep(seconds)


REACTOR_NAP_S = 0.001


def _skip_reactor_nap() -> None:
    """Once per process (the module attribute is shared by every association)."""
    if pynetdicom.__version__ != PATCHED_PYNETDICOM:  # another version may nap elsewhere or not at all
        return
    if not isinstance(pynetdicom.association.time, _ReactorClock):
        pynetdicom.association.time = _ReactorClock()


PATCHED_PYNETDICOM = "3.0.4"


def make_responsive(assoc) -> None:  # noqa: ANN001 - a pynetdicom Association, before it starts
    """Swap the association's DUL and DIMSE providers for the responsive ones (same state, same layout)."""
    assoc.dul.__class__ = ResponsiveDUL
    assoc.dimse.__class__ = ResponsiveDIMSE
    assoc.dul.to_user_queue = WakingQueue(lambda: assoc.dimse.msg_queue.put((None, None)))
    _skip_reactor_nap()
