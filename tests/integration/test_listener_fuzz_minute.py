"""The issue's fuzzing in CI: the dataset walker (the code that inspects what peers send; pynetdicom parses the
PDUs, and the PDU length cap is tested in test_listener_bad_peers.py) gets 60 s of random and mutated real
datasets in the default test run, without a crash, an unexpected exception or a walk over 1 s. Not a unit
test (a minute long), so it is marked integration; tests/unit/test_listener_dataset_ids.py holds the 5 s
variant, tests/support/dataset_fuzz.py the strategies."""

import pytest

from support.dataset_fuzz import fuzz

pytestmark = pytest.mark.integration


def test_fuzz_walker_for_a_minute():
    rounds = fuzz(60)
    assert rounds >= 10  # 300 examples a round: thousands of inputs, not a loop that did nothing
