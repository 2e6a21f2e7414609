"""`tumorsearch reindex` finds the stored studies from their files: the UID a folder's files carry, trusted
only where its digest names the folder; damaged or misplaced folders are reported, never handed over."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from services.reindex.archive import EmptyFolder, StoredStudy, UnreadableFolder, read_folder, study_folders
from services.reindex.handover import is_current
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import StudyStatus
from shared.shipped_model import checkpoint_model_version, shipped_model_version
from support.stored_studies import store_instance

pytestmark = pytest.mark.unit


def test_a_study_folder_gives_the_uid_its_files_carry(tmp_path):
    layout, uid = StudyLayout(tmp_path), generate_uid()
    store_instance(layout, uid)
    store_instance(layout, uid)
    (folder,) = study_folders(layout)
    assert read_folder(layout, folder) == StoredStudy(uid, layout.study_location(uid))


def test_one_damaged_instance_does_not_hide_the_study(tmp_path):
    layout, uid = StudyLayout(tmp_path), generate_uid()
    good = store_instance(layout, uid)
    (good.parent / ("0" * 32 + ".dcm")).write_bytes(b"not DICOM at all")  # sorts first
    assert read_folder(layout, good.parent) == StoredStudy(uid, layout.study_location(uid))


def test_a_folder_of_damaged_files_is_reported_with_what_was_found(tmp_path):
    layout, uid = StudyLayout(tmp_path), generate_uid()
    folder = layout.study_dir(uid)
    folder.mkdir(parents=True)
    for k in range(5):
        (folder / f"{k:032x}.dcm").write_bytes(b"\x00" * 10)
    found = read_folder(layout, folder)
    assert isinstance(found, UnreadableFolder) and found.location == layout.study_location(uid)
    assert found.reason.startswith("no StudyInstanceUID readable in the first 3 files (")


def test_files_of_another_study_in_a_folder_are_not_trusted(tmp_path):
    """Handing such a folder over under the files' UID would make the worker process another study's folder."""
    layout, uid, other = StudyLayout(tmp_path), generate_uid(), generate_uid()
    path = store_instance(layout, other, folder_uid=uid)
    found = read_folder(layout, path.parent)
    assert found == UnreadableFolder(layout.study_location(uid),
                                     "the StudyInstanceUID in its files is not the one the folder is named by")


def test_an_empty_folder_a_stranger_and_a_missing_archive(tmp_path):
    layout = StudyLayout(tmp_path)
    assert study_folders(layout) == []
    folder = layout.study_dir(generate_uid())
    folder.mkdir(parents=True)
    assert read_folder(layout, folder) == EmptyFolder(folder.relative_to(tmp_path).as_posix())
    stranger = layout.studies / "ab" / "backup-copy"
    stranger.mkdir(parents=True)
    assert read_folder(layout, stranger) == UnreadableFolder(
        "studies/ab/backup-copy", "expected a folder named by a study key (32 hex digits), found another name")


def test_folders_are_listed_in_one_stable_order(tmp_path):
    layout = StudyLayout(tmp_path)
    for _ in range(6):
        store_instance(layout, generate_uid())
    (layout.studies / "stray-file").write_text("x")
    folders = study_folders(layout)
    assert len(folders) == 6 and folders == sorted(folders)


def status(state: str, version: str | None) -> StudyStatus:
    return StudyStatus(study_instance_uid="1.2.3", state=state, model_version=version, updated_at=time.time())


def test_only_studies_the_version_settled_are_current():
    assert is_current(status("done", "v2"), "v2") and is_current(status("no_tumour", "v2"), "v2")
    assert is_current(status("failed", "v2"), "v2")           # the data's fault (no MR series): same again
    assert not is_current(status("done", "v1"), "v2")
    assert not is_current(status("failed", None), "v2")      # a timeout or poison gets another try
    assert not is_current(status("processing", None), "v2")   # in flight: the worker may be the old one
    assert not is_current(None, "v2")


def test_the_version_of_a_checkpoint_comes_from_its_card(tmp_path):
    assert checkpoint_model_version(None) == shipped_model_version()
    (tmp_path / "model_card.json").write_text(json.dumps({"model_version": "pisov2d-c64-0123456789"}))
    assert checkpoint_model_version(tmp_path) == "pisov2d-c64-0123456789"
    with pytest.raises(ValueError, match=r"expected .*empty/model_card.json with a model_version, found"):
        checkpoint_model_version(tmp_path / "empty")
    (tmp_path / "model_card.json").write_text(json.dumps({"model_version": None}))
    with pytest.raises(ValueError, match=r"with a model_version, found None"):
        checkpoint_model_version(tmp_path)
