"""The outbox (what owes a hand-over survives anything) and the peer allow-list."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.listener.outbox import Outbox
from services.listener.peers import PeerPolicy
from services.listener.settings import ListenerSettings
from shared.config import SettingsError, settings_from_environ

pytestmark = pytest.mark.unit
STUDY = "1.2.826.0.1.3680043.8.498.77"


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    (tmp_path / "outbox").mkdir()
    (tmp_path / "incoming").mkdir()
    return Outbox(tmp_path / "outbox", tmp_path / "incoming")


def test_a_marked_study_is_claimed_once_and_never_named_by_its_uid(outbox: Outbox):
    outbox.mark_pending(STUDY)
    outbox.mark_pending(STUDY)
    names = os.listdir(outbox.folder)
    assert len(names) == 1 and STUDY not in names[0] and names[0].endswith(".pending")
    claim = outbox.claim(STUDY)
    assert claim is not None and outbox.claim(STUDY) is None, "expected exactly one claim to succeed"
    outbox.done(claim)
    assert os.listdir(outbox.folder) == [] and os.listdir(outbox.incoming) == []


def test_an_instance_after_the_claim_owes_a_new_hand_over(outbox: Outbox):
    outbox.mark_pending(STUDY)
    claim = outbox.claim(STUDY)
    outbox.mark_pending(STUDY)  # stored while the hand-over was being sent
    outbox.done(claim)
    assert outbox.owed(sending_older_than_s=60) == [STUDY]


def test_a_failed_or_abandoned_hand_over_is_owed_again(outbox: Outbox):
    outbox.mark_pending(STUDY)
    outbox.release(outbox.claim(STUDY))
    assert outbox.owed(sending_older_than_s=60) == [STUDY]
    abandoned = outbox.claim(STUDY)
    assert outbox.owed(sending_older_than_s=60) == [], "expected a fresh hand-over left to its replica"
    old = time.time() - 120
    os.utime(abandoned.path, (old, old))
    assert outbox.owed(sending_older_than_s=60) == [STUDY]
    assert [p.suffix for p in outbox.folder.iterdir()] == [".pending"]


def test_peer_policy_checks_address_and_calling_ae_together():
    policy = PeerPolicy.from_entries(["PACS@10.1.0.0/16", "*@127.0.0.1", "MOD@::1"])
    assert policy.address_allowed("10.1.2.3") and policy.address_allowed("::ffff:127.0.0.1")
    assert not policy.address_allowed("10.2.0.1") and not policy.address_allowed("not an address")
    assert policy.association_allowed("PACS  ", "10.1.9.9")
    assert not policy.association_allowed("OTHER", "10.1.9.9")
    assert policy.association_allowed("ANYONE", "127.0.0.1")
    assert policy.association_allowed("MOD", "::1") and not policy.association_allowed("PACS", "::1")


def test_listener_settings_parse_lists_and_name_bad_entries():
    settings = settings_from_environ(ListenerSettings, {
        "TUMORSEARCH_LISTENER__PEERS": "PACS@10.0.0.0/8, ORTHANC@192.168.1.5",
        "TUMORSEARCH_LISTENER__SOP_CLASSES": "1.2.840.10008.5.1.4.1.1.4"})
    assert settings.listener.peers == ("PACS@10.0.0.0/8", "ORTHANC@192.168.1.5")
    assert settings.listener.sop_classes == ("1.2.840.10008.5.1.4.1.1.4",)
    with pytest.raises(SettingsError, match="TUMORSEARCH_LISTENER__PEERS"):
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER__PEERS": "PACS@somewhere"})
    with pytest.raises(SettingsError, match="TUMORSEARCH_LISTENER__SOP_CLASSES"):
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER__SOP_CLASSES": "../../x"})
    with pytest.raises(SettingsError, match="tls_private_key"):
        settings_from_environ(ListenerSettings, {"TUMORSEARCH_LISTENER__TLS_CERTIFICATE": "/x.pem"})
