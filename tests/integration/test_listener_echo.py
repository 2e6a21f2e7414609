"""The listener harness itself: a real `tumorsearch listener` subprocess starts and answers a C-ECHO."""

import pytest

from support.listener import LISTENER_AE

pytestmark = pytest.mark.integration


def test_listener_starts_and_answers_echo(listener_factory, redis_server, dcmtk):
    listener = listener_factory(redis_server.url)
    done = dcmtk.echoscu(listener.port, called_aet=LISTENER_AE)
    assert done.returncode == 0, f"expected echoscu to succeed; found exit {done.returncode}\n{done.stderr}"
    listener.wait_for_log('"result": "released"')
