"""`tumorsearch dicomize` on a tiny fake figshare folder: one study per image with the PNG's pixels, the fold in
the Clinical Trial modules, a mapping side file, re-runs that skip (never new UIDs), recovery after a crash, and
a missing data folder refused with where to put it. The volume mode's lesion box is checked on arrays here (its
reader imports torch) and on the real TCGA volume in tests/integration/test_dicomize_figshare.py."""

import csv

import numpy as np
import pydicom
import pytest
from PIL import Image

from services.dicomize.main import command
from shared.dicomize.output import MAPPING, DicomizeError
from shared.dicomize.volume import check_same_grid, instance_uids, lesion_summary
from shared.dicomize.writer import StudyIds, write_slice_study

pytestmark = pytest.mark.unit

# (image id, label, fold, spacing at 256) as in labels.csv; ids chosen so folder names need zero padding.
IMAGES = [(1, "meningioma", 3, 0.98), (7, "glioma", 1, 0.94), (12, "pituitary", 2, 0.86)]
UID_COLUMNS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")


@pytest.fixture
def figshare(tmp_path):
    """A figshare-shaped folder: labels.csv and 3 small 8-bit PNGs of different sizes (values 0..255)."""
    root = tmp_path / "figshare-cetumor"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(3)
    pixels = {}
    for n, (image_id, *_rest) in enumerate(IMAGES):
        array = rng.integers(0, 256, (24 + 8 * n, 40), dtype=np.uint8)
        array[0, 0], array[-1, -1] = 0, 255
        Image.fromarray(array, mode="L").save(root / "images" / f"{image_id}.png")
        pixels[image_id] = array
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "label", "label_code", "fold", "original_size", "pixel_spacing_mm",
                         "tumor_pixels"])
        for image_id, label, fold, spacing in IMAGES:
            writer.writerow([image_id, label, 1, fold, 512, spacing, 100])
    return root, pixels


def _rows(out):
    with (out / MAPPING).open(newline="") as handle:
        return {int(row["image_id"]): row for row in csv.DictReader(handle)}


def _run(root, out, *extra):
    return command(["--figshare", str(root), "--out", str(out), *extra])


def test_each_image_becomes_one_study_with_its_pixels_fold_and_a_mapping_row(figshare, tmp_path, capsys):
    root, pixels = figshare
    out = tmp_path / "out"
    assert _run(root, out) == 0
    assert "3 studies written, 0 skipped" in capsys.readouterr().out

    rows = _rows(out)
    assert list(rows) == [1, 7, 12]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["0001", "0007", "0012", MAPPING]
    all_uids = [row[c] for row in rows.values() for c in UID_COLUMNS]
    assert len(set(all_uids)) == len(all_uids)
    for image_id, label, fold, spacing in IMAGES:
        row = rows[image_id]
        assert (row["label"], row["fold"], row["patient_id"], row["folder"]) == (
            label, str(fold), f"FIGSHARE-{image_id:04d}", f"{image_id:04d}")
        files = sorted((out / row["folder"]).iterdir())
        assert [f.name for f in files] == ["slice0000.dcm"]
        ds = pydicom.dcmread(files[0])
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage and ds.Modality == "MR"
        assert ds.pixel_array.dtype == np.uint16 and np.array_equal(ds.pixel_array, pixels[image_id])
        assert [float(v) for v in ds.PixelSpacing] == [spacing, spacing] and float(ds.SliceThickness) == 6.0
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == tuple(row[c] for c in UID_COLUMNS)
        assert ds.PatientID == row["patient_id"] and ds.ClinicalTrialSubjectID == row["patient_id"]
        # what the worker's _fold reads (services/worker/pipeline.py), and the rest of the two modules
        assert ds.ClinicalTrialTimePointID == f"fold-{fold}"
        assert ds.ClinicalTrialSponsorName == "TumorSearch benchmark"
        assert ds.ClinicalTrialProtocolID == "figshare-cetumor" and ds.ClinicalTrialProtocolName
        assert "ClinicalTrialSiteID" in ds and "ClinicalTrialSiteName" in ds  # type 2: present
        assert label not in str(ds)  # the tumour type is in the mapping file only


def test_a_rerun_skips_everything_and_keeps_the_uids(figshare, tmp_path, capsys):
    root, _ = figshare
    out = tmp_path / "out"
    assert _run(root, out) == 0
    before = (out / MAPPING).read_text()
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/slice0000.dcm")}
    capsys.readouterr()
    assert _run(root, out) == 0
    assert "0 studies written, 3 skipped" in capsys.readouterr().out
    assert (out / MAPPING).read_text() == before
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/slice0000.dcm")} == stamps


def test_limit_folds_and_resuming_a_partial_run(figshare, tmp_path, capsys):
    root, _ = figshare
    out = tmp_path / "out"
    assert _run(root, out, "--folds", "1,2") == 0
    assert list(_rows(out)) == [7, 12]
    assert _run(root, out, "--limit", "1") == 0
    first = _rows(out)
    assert list(first) == [1, 7, 12]
    capsys.readouterr()
    assert _run(root, out) == 0
    assert "0 studies written, 3 skipped" in capsys.readouterr().out
    assert _rows(out) == first


def test_a_crash_between_file_and_row_or_a_lost_folder_never_hands_out_new_uids(figshare, tmp_path, capsys):
    root, pixels = figshare
    out = tmp_path / "out"
    assert _run(root, out) == 0
    rows = _rows(out)
    # image 1 lost its row (and a torn half row was left), image 7's folder is gone, 12 left a partial folder
    lines = (out / MAPPING).read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("1,")]
    (out / MAPPING).write_text("".join(kept) + "1,meningioma,3,FIGSHARE-00")
    for path in (out / "0007").iterdir():
        path.unlink()
    (out / "0007").rmdir()
    (out / ".partial-0012").mkdir()
    (out / ".partial-0012" / "slice0000.dcm").write_bytes(b"half a file")
    capsys.readouterr()

    assert _run(root, out) == 0
    assert "1 study written, 2 skipped" in capsys.readouterr().out
    assert _rows(out) == rows
    assert not list(out.glob(".partial-*"))
    rewritten = pydicom.dcmread(out / "0007" / "slice0000.dcm")
    assert (rewritten.StudyInstanceUID, rewritten.SeriesInstanceUID, rewritten.SOPInstanceUID) == tuple(
        rows[7][c] for c in UID_COLUMNS)
    assert np.array_equal(rewritten.pixel_array, pixels[7])


def test_a_missing_data_folder_says_where_to_put_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUMORSEARCH_DATA_DIR", str(tmp_path / "data"))
    assert command(["--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "data" / "figshare-cetumor") in error and "TUMORSEARCH_DATA_DIR" in error
    assert "--figshare" in error and not (tmp_path / "out").exists()

    assert command(["--figshare", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "elsewhere") in capsys.readouterr().err


def test_a_writer_refusal_is_a_message_not_a_traceback(figshare, tmp_path, capsys):
    root, _ = figshare  # 24x40 images: below JPEG 2000's 32-pixel minimum side
    assert _run(root, tmp_path / "out", "--transfer-syntax", "jpeg2000") == 2
    assert "image 1: JPEG 2000 Lossless: expected images of at least 32x32" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob(".partial-*")) and not (tmp_path / "out" / "0001").exists()
    assert _run(root, tmp_path / "out", "--transfer-syntax", "rle") == 0  # the same folder, resumed


def test_mode_options_do_not_mix(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        command(["--volume", str(tmp_path / "v.nrrd"), "--limit", "3", "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    with pytest.raises(SystemExit):
        command(["--mask", str(tmp_path / "m.nrrd"), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        command(["--folds", "0", "--out", str(tmp_path / "out")])


def test_writer_checks_the_clinical_trial_attributes(tmp_path):
    image = np.zeros((8, 8), np.uint16)
    ids = StudyIds.fresh("SYNTH-1")
    minimal = {"ClinicalTrialSponsorName": "S", "ClinicalTrialProtocolID": "P", "ClinicalTrialSubjectID": "SYNTH-1"}
    without = lambda keyword: {k: v for k, v in minimal.items() if k != keyword}  # noqa: E731
    for bad, words in [({**minimal, "ClinicalTrialSponsorName": ""}, "ClinicalTrialSponsorName"),
                       (without("ClinicalTrialProtocolID"), "ClinicalTrialProtocolID"),
                       (without("ClinicalTrialSubjectID"), "SubjectID"),
                       ({**minimal, "PatientName": "x"}, "PatientName"),
                       ({**minimal, "ClinicalTrialTimePointID": "fold\\1"}, "ClinicalTrialTimePointID")]:
        with pytest.raises(ValueError, match=words):
            write_slice_study(image, 1.0, tmp_path / "refused", ids, clinical_trial=bad)
    assert not (tmp_path / "refused").exists()
    [path] = write_slice_study(image, 1.0, tmp_path / "ok", ids, clinical_trial=minimal)
    ds = pydicom.dcmread(path)
    # type 2 attributes of both modules are present, empty
    assert ds.ClinicalTrialSiteID == ds.ClinicalTrialSiteName == ds.ClinicalTrialTimePointID == ""
    assert "ClinicalTrialTimePointDescription" not in ds  # type 3: only when given
    [plain] = write_slice_study(image, 1.0, tmp_path / "plain", StudyIds.fresh("SYNTH-2"))
    assert not [e for e in pydicom.dcmread(plain) if e.tag.group == 0x0012]


def test_lesion_box_in_file_order_and_in_reader_order():
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1:3, 2:4, 3:6] = 1
    labels[2, 3, 5] = 2
    up = np.diag([0.5, 0.5, 2.0, 1.0])  # slices go along the normal (axial, rows posterior)
    summary = lesion_summary(labels, up)
    assert summary["box_voxels"] == summary["box_file_order"] == [1, 2, 3, 3, 4, 6]
    assert summary["voxels"] == 12 and summary["labels"] == [1, 2] and summary["volume_mm3"] == 6.0
    assert summary["instance_numbers"] == [2, 3] and summary["slices_reversed"] is False

    flipped = np.diag([0.5, -0.5, 2.0, 1.0])  # rows run anterior: the normal points down, slices go up
    summary = lesion_summary(labels, flipped)
    assert summary["slices_reversed"] is True
    assert summary["box_file_order"] == [1, 2, 3, 3, 4, 6] and summary["box_voxels"] == [2, 2, 3, 4, 4, 6]

    empty = lesion_summary(np.zeros((2, 3, 3)), up)
    assert empty["voxels"] == 0 and empty["box_voxels"] is None


def test_mask_grid_and_instance_uids(tmp_path):
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    check_same_grid((5, 6, 7), affine, (5, 6, 7), affine + 1e-5, tmp_path / "i", tmp_path / "m")
    with pytest.raises(DicomizeError, match="grid"):
        check_same_grid((5, 6, 7), affine, (5, 6, 8), affine, tmp_path / "i", tmp_path / "m")
    shifted = affine.copy()
    shifted[0, 3] = 0.5
    with pytest.raises(DicomizeError, match="affine"):
        check_same_grid((5, 6, 7), affine, (5, 6, 7), shifted, tmp_path / "i", tmp_path / "m")
    series = StudyIds.fresh("SYNTH-3").series_uid
    assert instance_uids(series, 3) == instance_uids(series, 3) and len(set(instance_uids(series, 3))) == 3
