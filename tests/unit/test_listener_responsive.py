"""The listener's changes to pynetdicom's reactor pace: a release request wakes the association's wait at
once, and only the acceptor reactor's 1 ms nap is skipped (every other sleep of the module still sleeps)."""

import time

import pynetdicom
import pynetdicom.association
import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import A_RELEASE

from services.listener.responsive import PATCHED_PYNETDICOM, ResponsiveDIMSE, ResponsiveDUL, make_responsive

pytestmark = pytest.mark.unit


def _acceptor() -> Association:
    assoc = Association(AE(), "acceptor")
    make_responsive(assoc)
    return assoc


def test_a_release_request_wakes_the_reactors_wait_at_once():
    assoc = _acceptor()
    assert isinstance(assoc.dul, ResponsiveDUL) and isinstance(assoc.dimse, ResponsiveDIMSE)
    assert assoc.dimse.get_msg(block=False) == (None, None)  # nothing queued: the wait times out empty
    assoc.dul.to_user_queue.put(A_RELEASE())
    started = time.monotonic()
    assert assoc.dimse.get_msg(block=False) == (None, None)
    assert time.monotonic() - started < 0.005  # woken, not timed out (REACTOR_WAIT_S is 20 ms)
    assert isinstance(assoc.dul.to_user_queue.get_nowait(), A_RELEASE)  # the primitive itself is still there


def test_only_the_reactor_nap_is_skipped():
    _acceptor()
    assert pynetdicom.__version__ == PATCHED_PYNETDICOM  # the pin the patch was written against
    clock = pynetdicom.association.time
    started = time.monotonic()
    for _ in range(100):
        clock.sleep(0.001)
    assert time.monotonic() - started < 0.02
    started = time.monotonic()
    clock.sleep(0.01)
    assert time.monotonic() - started >= 0.009
    assert clock.monotonic() > 0 and clock.time() > 0  # the rest of the time module is the real one
