import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.contracts.storage import StudyLayout, UnsafePath
from shared.contracts.tasks import EMBED_REGION, PROCESS_STUDY, TASK_QUEUES, StudyReady
from shared.contracts.uids import InvalidUid, uid_key, validate_uid
from shared.contracts.vectors import TumorPayload, collection_name, point_id

pytestmark = pytest.mark.unit

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.2"


@pytest.mark.parametrize("bad", ["../../x", "1.2.03", "1..2", ".1", "1.2.", "1.2.3a", "", "1" * 65, "1/2"])
def test_non_conformant_uids_are_refused(bad):
    with pytest.raises(InvalidUid):
        validate_uid(bad)


def test_refusal_does_not_echo_the_peer_value():
    with pytest.raises(InvalidUid) as caught:
        validate_uid("1.2\nFAKE LOG LINE")
    assert "FAKE" not in str(caught.value)


def test_uid_key_is_fixed_length_hex_and_separates_kinds():
    key = uid_key(STUDY, "study")
    assert len(key) == 32 and set(key) <= set("0123456789abcdef")
    assert key == uid_key(STUDY, "study")
    assert key != uid_key(STUDY, "instance")


def test_layout_paths_never_contain_the_uid(tmp_path):
    layout = StudyLayout(tmp_path)
    path = layout.instance_path(STUDY, "1.2.3.4")
    assert STUDY not in str(path) and "1.2.3.4" not in str(path)
    assert path.parent == layout.study_dir(STUDY)
    assert layout.resolve(layout.study_location(STUDY)) == layout.study_dir(STUDY)


@pytest.mark.parametrize("location", ["../etc", "/etc/passwd", "studies/../../x", "studies/ab/cd",
                                      "outbox/ab/" + "a" * 32, "studies/zz/" + "a" * 32])
def test_layout_refuses_locations_outside_the_study_tree(tmp_path, location):
    with pytest.raises(UnsafePath):
        StudyLayout(tmp_path).resolve(location)


def test_point_ids_are_deterministic_uuids_per_study_series_tumour_and_model():
    first = point_id(STUDY, SERIES, 0, "pisov2d-v1")
    assert first == point_id(STUDY, SERIES, 0, "pisov2d-v1")
    assert uuid.UUID(first).version == 5
    assert len({first, point_id(STUDY, SERIES, 1, "pisov2d-v1"), point_id(STUDY, SERIES, 0, "pisov2d-v2")}) == 3


def test_collection_name_carries_a_safe_model_version():
    assert collection_name("pisov2d-v1") == "tumors__pisov2d-v1"
    with pytest.raises(ValueError, match="model version"):
        collection_name("../Pisov")


def test_task_message_carries_identifiers_only_and_refuses_anything_else(tmp_path):
    layout = StudyLayout(Path(tmp_path))
    message = StudyReady(study_instance_uid=STUDY, location=layout.study_location(STUDY), instance_count=3,
                         handover=1)
    assert set(message.model_dump()) == {"schema_version", "study_instance_uid", "location", "instance_count",
                                         "handover"}
    with pytest.raises(ValidationError):
        StudyReady(study_instance_uid=STUDY, location="x", instance_count=3, handover=1, PatientName="Doe^J")


def test_task_names_are_routed_to_queues():
    assert TASK_QUEUES[PROCESS_STUDY] == "studies" and TASK_QUEUES[EMBED_REGION] == "interactive"


def test_payload_stores_a_patient_hash_never_a_patient_id():
    fields = set(TumorPayload.model_fields)
    assert "patient_hash" in fields
    assert not {"patient_id", "patient_name", "PatientID", "PatientName"} & fields
