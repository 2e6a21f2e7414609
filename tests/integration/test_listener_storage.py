"""Real peers store into `tumorsearch listener`: dcmtk's storescu with every transfer syntax we accept,
Orthanc pushing a study, and two listener replicas sharing Redis and storage."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from services.bench.listener import synthesize_series
from shared.contracts.storage import StudyLayout
from support.listener import LISTENER_AE, split_part10, study_messages

pytestmark = pytest.mark.integration

# storescu flag that proposes each file's own transfer syntax (shared/data/README.md lists the files).
PROPOSE = {"1": "-xe", "2": "-xi", "3": "-xb", "4": "-xr", "5": "-xs", "6": "-xs", "7": "-xt", "8": "-xt",
           "9": "-xv"}


def test_every_transfer_syntax_arrives_byte_for_byte_and_decodes_identically(
        listener_factory, redis_server, dcmtk, data_dir: Path):
    listener = listener_factory(redis_server.url)
    layout = StudyLayout(listener.home)
    folder = data_dir / "dicom-transfer-syntaxes"
    for name, flag in PROPOSE.items():
        sent = folder / f"{name}.dcm"
        done = dcmtk.storescu(listener.port, [sent], called_aet=LISTENER_AE, args=[flag, "-R"])
        assert done.returncode == 0, f"expected storescu {flag} {name}.dcm to succeed; found\n{done.stderr}"
        original = pydicom.dcmread(sent)
        stored_path = layout.instance_path(original.StudyInstanceUID, original.SOPInstanceUID)
        sent_syntax, sent_data = split_part10(sent.read_bytes())
        stored_syntax, stored_data = split_part10(stored_path.read_bytes())
        assert (stored_syntax, stored_data) == (sent_syntax, sent_data), \
            f"{name}.dcm: expected the dataset as sent in {sent_syntax}; found {stored_syntax}, other bytes"
        stored = pydicom.dcmread(stored_path)
        assert np.array_equal(stored.pixel_array, original.pixel_array), f"{name}.dcm: pixels differ"


def test_deflated_is_never_accepted(listener_factory, redis_server):
    listener = listener_factory(redis_server.url)
    ae = AE(ae_title="DEFLATER")
    ae.add_requested_context(MRImageStorage, [DeflatedExplicitVRLittleEndian])
    ae.add_requested_context(Verification, [DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=LISTENER_AE)
    try:
        assert assoc.is_established, "expected the association itself to be accepted"
        accepted = [(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts]
        assert accepted == [(str(Verification), str(ExplicitVRLittleEndian))], \
            f"expected Deflated refused for every context; found accepted {accepted}"
    finally:
        assoc.release()


def upload_to_orthanc(orthanc, paths: list[Path]) -> str:
    study = ""
    for path in paths:
        request = urllib.request.Request(f"{orthanc.url}/instances", data=path.read_bytes(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            study = json.loads(response.read())["ParentStudy"]
    return study


def test_orthanc_push_is_handed_over_once_complete(listener_factory, redis_server, orthanc, tmp_path: Path):
    listener = listener_factory(redis_server.url)
    paths = synthesize_series(tmp_path / "series", slices=12, size=64)
    study_uid = pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID
    orthanc_study = upload_to_orthanc(orthanc, paths)
    orthanc.add_modality("tumorsearch", LISTENER_AE, listener.port)
    orthanc.request("POST", "/modalities/tumorsearch/store", {"Resources": [orthanc_study], "Synchronous": True})
    messages = study_messages(redis_server.url, wait_s=6)
    layout = StudyLayout(listener.home)
    assert messages == [{"schema_version": 1, "study_instance_uid": study_uid,
                         "location": layout.study_location(study_uid), "instance_count": 12, "handover": 1}]


def test_two_replicas_hand_over_a_split_study_once(listener_factory, redis_server, dcmtk, tmp_path: Path):
    home = tmp_path / "shared-home"
    first = listener_factory(redis_server.url, home=home, quiet_period_s=2)
    second = listener_factory(redis_server.url, home=home, quiet_period_s=2)
    paths = synthesize_series(tmp_path / "series", slices=10, size=64)
    for listener, half in ((first, paths[:5]), (second, paths[5:])):
        done = dcmtk.storescu(listener.port, half, called_aet=LISTENER_AE)
        assert done.returncode == 0, done.stderr
    messages = study_messages(redis_server.url, wait_s=8)
    assert [(m["instance_count"], m["handover"]) for m in messages] == [(10, 1)], messages
    # A late instance re-sent to either replica: a new, idempotent hand-over with the same files.
    done = dcmtk.storescu(second.port, paths[:1], called_aet=LISTENER_AE)
    assert done.returncode == 0, done.stderr
    late = study_messages(redis_server.url, wait_s=8, expect=1)
    assert [(m["instance_count"], m["handover"]) for m in late] == [(10, 2)], late
