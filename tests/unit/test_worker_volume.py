"""Series into volumes: geometry kept, broken series reported with their reason before any decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from services.worker.errors import SeriesError
from services.worker.series_choice import choose_series
from services.worker.study_files import read_study
from services.worker.volume import build_volume, check_series
from shared.dicomize.writer import StudyIds, write_volume_series

LIMIT = 1 << 30


def affine(spacing=(0.9, 0.8, 5.0), origin=(-100.0, -120.0, 30.0)) -> np.ndarray:
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    return a


def series_files(tmp_path: Path, name: str = "s", slices: int = 6, **kwargs) -> list[Path]:
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 1000, (slices, 24, 32)).astype(np.int16)
    return write_volume_series(volume, affine(), tmp_path / name, StudyIds.fresh("UNIT"), **kwargs)


def study_of(tmp_path: Path, files: list[Path]):
    folder = tmp_path / "study"
    folder.mkdir(exist_ok=True)
    for path in files:
        (folder / f"{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    return read_study(folder)


def test_the_volume_keeps_pixels_order_and_the_lps_affine(tmp_path):
    files = series_files(tmp_path)
    originals = [pydicom.dcmread(f).pixel_array for f in files]
    study = study_of(tmp_path, list(reversed(files)))  # stored order must not matter
    volume, _ = build_volume(study.series[0], LIMIT)
    assert np.allclose(volume.affine, affine())
    assert volume.spacing_mm == pytest.approx((0.8, 0.9, 5.0))
    for k, original in enumerate(originals):
        assert np.array_equal(volume.pixels[k], original)


def test_a_missing_slice_is_a_gap_not_a_guess(tmp_path):
    files = series_files(tmp_path)
    study = study_of(tmp_path, files[:2] + files[3:])
    with pytest.raises(SeriesError, match="slice spacing"):
        check_series(study.series[0], LIMIT)


def test_mixed_sizes_are_refused(tmp_path):
    big = series_files(tmp_path, "a", slices=3)
    ds = pydicom.dcmread(big[2])
    pixels = ds.pixel_array[:12]
    ds.Rows = 12
    ds.PixelData = pixels.tobytes()
    ds.save_as(big[2])
    with pytest.raises(SeriesError, match="image sizes"):
        check_series(study_of(tmp_path, big).series[0], LIMIT)


def test_a_declared_size_beyond_the_limit_is_refused_before_decoding(tmp_path):
    files = series_files(tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1000  # declared only: the pixels stay small
    ds.save_as(files[0])
    with pytest.raises(SeriesError, match="declared pixel data"):
        build_volume(study_of(tmp_path, files).series[0], LIMIT)


def test_the_post_contrast_t1_series_is_chosen_among_several(tmp_path):
    t1c = series_files(tmp_path, "t1c", series_description="AX T1 POST GD")
    flair = series_files(tmp_path, "flair", series_description="AX FLAIR", contrast_agent=None)
    pre = series_files(tmp_path, "pre", series_description="AX T1 PRE", contrast_agent=None)
    study = study_of(tmp_path, flair + t1c + pre)
    [choice] = choose_series(study.series, "post_contrast_t1")
    assert choice.series.description == "AX T1 POST GD"
    assert "contrast agent recorded" in choice.reason and "post-contrast" in choice.reason
    assert len(choose_series(study.series, "all")) == 3


def test_objects_that_are_not_mr_images_are_skipped_with_a_reason(tmp_path):
    files = series_files(tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT
    ds.save_as(files[0])
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    study = study_of(tmp_path, files + [tmp_path / "junk.dcm"])
    assert sorted(s.reason for s in study.skipped) == ["not an MR image (SOP class 1.2.840.10008.5.1.4.1.1.2)",
                                                       "unreadable DICOM file"]
    assert study.series[0].frames == len(files) - 1


def test_a_multi_frame_mr_image_reads_like_its_series(tmp_path):
    import highdicom as hd

    files = series_files(tmp_path)
    classic, _ = build_volume(study_of(tmp_path, files).series[0], LIMIT)
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        [pydicom.dcmread(f) for f in files], series_instance_uid=pydicom.uid.generate_uid(), series_number=2,
        sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1)
    folder = tmp_path / "enhanced"
    folder.mkdir()
    enhanced.save_as(folder / "one.dcm")
    study = read_study(folder)
    assert study.series[0].frames == len(files)
    volume, _ = build_volume(study.series[0], LIMIT)
    assert np.array_equal(volume.pixels, classic.pixels)
    assert np.allclose(volume.affine, classic.affine)
