"""shared.dicomize.writer on small synthetic volumes: pixels, geometry and identifiers survive a round trip
through files read back by pydicom the way a DICOM reader would (sorting slices by position, not by name)."""

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, MRImageStorage, RLELossless

from shared.contracts.uids import validate_uid
from shared.dicomize.writer import StudyIds, write_slice_study, write_volume_series

pytestmark = pytest.mark.unit

SHAPE = (6, 32, 40)  # (K, rows, cols); 32 is the smallest side JPEG 2000 (pylibjpeg-openjpeg) accepts


def _affine(columns, rows, slices, origin) -> np.ndarray:
    """4x4 LPS affine whose columns are the i (column), j (row) and k (slice) steps, then the origin."""
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = columns, rows, slices, origin
    return affine


AFFINES = {
    # axial, 0.8 mm between columns, 0.9 mm between rows, 5 mm slices, away from the origin
    "axial-offset": _affine((0.8, 0, 0), (0, 0.9, 0), (0, 0, 5), (-100.0, -120.5, 30.25)),
    # rows run anterior (as in the TCGA NRRDs): the normal points inferior, against the slice order
    "axial-row-flipped": _affine((0.8, 0, 0), (0, -0.9, 0), (0, 0, 5), (-100.0, 99.6, -78.0)),
    # sagittal: columns go posterior, rows go inferior, slices go left
    "sagittal": _affine((0, 0.8, 0), (0, 0, -0.9), (5, 0, 0), (-20.0, -110.0, 90.0)),
}


def _volume(dtype=np.int16, low=-1000, high=3000) -> np.ndarray:
    return np.random.default_rng(7).integers(low, high, SHAPE).astype(dtype)


def _read(paths) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in paths]


def _reassemble(datasets) -> tuple[np.ndarray, np.ndarray]:
    """(volume, affine) rebuilt only from IOP/IPP/PixelSpacing, slices sorted along the image normal."""
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    ordered = sorted(datasets, key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
    positions = np.array([ds.ImagePositionPatient for ds in ordered], dtype=float)
    between_rows, between_columns = (float(v) for v in ordered[0].PixelSpacing)
    step = (positions[-1] - positions[0]) / (len(ordered) - 1) if len(ordered) > 1 else normal
    affine = _affine(row_dir * between_columns, col_dir * between_rows, step, positions[0])
    return np.stack([ds.pixel_array for ds in ordered]), affine


def _along_normal(volume, affine) -> tuple[np.ndarray, np.ndarray]:
    """The input re-indexed so k increases along the normal, as _reassemble orders slices."""
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    if np.dot(affine[:3, 2], normal) >= 0:
        return volume, affine
    flipped = affine.copy()
    flipped[:3, 3] = affine[:3, 3] + affine[:3, 2] * (len(volume) - 1)
    flipped[:3, 2] = -affine[:3, 2]
    return volume[::-1], flipped


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_volume_and_affine_round_trip(tmp_path, name):
    volume, affine = _volume(), AFFINES[name]
    paths = write_volume_series(volume, affine, tmp_path, StudyIds.fresh("TEST-P0001"))

    datasets = _read(paths)
    rebuilt, rebuilt_affine = _reassemble(datasets)
    expected, expected_affine = _along_normal(volume, affine)
    assert rebuilt.dtype == np.int16 and np.array_equal(rebuilt, expected)
    assert np.allclose(rebuilt_affine, expected_affine, atol=1e-6)
    for k, ds in enumerate(datasets):  # the writer's own convention: file k is volume[k] at affine @ (0,0,k,1)
        assert ds.InstanceNumber == k + 1
        assert np.allclose(ds.ImagePositionPatient, (affine @ [0, 0, k, 1])[:3])
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 5.0


def test_identifiers_are_the_given_ones_and_uids_are_fresh_per_slice(tmp_path):
    ids = StudyIds.fresh("TEST-P0002", "Synthetic^Two")
    paths = write_volume_series(_volume(), AFFINES["axial-offset"], tmp_path / "s", ids, series_number=3)

    datasets = _read(paths)
    instance_uids = [ds.SOPInstanceUID for ds in datasets]
    assert len(set(instance_uids)) == len(paths)
    for ds in datasets:
        validate_uid(ds.SOPInstanceUID)
        validate_uid(ds.FrameOfReferenceUID)
        assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == MRImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == (ids.study_uid, ids.series_uid)
        assert (ds.PatientID, str(ds.PatientName)) == ("TEST-P0002", "Synthetic^Two")
        assert (ds.Modality, ds.SeriesNumber, ds.ContrastBolusAgent) == ("MR", 3, "gadolinium")
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1
    assert datasets[0].FrameOfReferenceUID not in {ids.study_uid, ids.series_uid, *instance_uids}
    uids = {ids.study_uid, ids.series_uid, datasets[0].FrameOfReferenceUID, *instance_uids}
    assert [p.name for p in paths] == [f"slice{k:04d}.dcm" for k in range(SHAPE[0])]
    assert not any(uid in str(p) for p in paths for uid in uids)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless, ExplicitVRLittleEndian])
def test_lossless_syntaxes_decode_to_the_same_pixels_and_keep_given_instance_uids(tmp_path, syntax):
    volume = _volume()
    given = [pydicom.uid.generate_uid() for _ in range(SHAPE[0])]
    paths = write_volume_series(volume, AFFINES["axial-offset"], tmp_path, StudyIds.fresh("TEST-P0003"),
                                transfer_syntax=syntax, instance_uids=given)

    datasets = _read(paths)
    assert [ds.file_meta.TransferSyntaxUID for ds in datasets] == [syntax] * SHAPE[0]
    assert [ds.SOPInstanceUID for ds in datasets] == given  # compress() must not make new ones
    assert np.array_equal(np.stack([ds.pixel_array for ds in datasets]), volume)


@pytest.mark.parametrize(("dtype", "low", "high", "bits", "signed"), [
    (np.int16, -2048, 2048, 12, 1), (np.int16, -3000, 3000, 16, 1),
    (np.uint16, 0, 4096, 12, 0), (np.uint16, 0, 65536, 16, 0), (np.uint8, 0, 256, 12, 0)])
def test_bits_stored_is_12_only_when_every_value_fits(tmp_path, dtype, low, high, bits, signed):
    volume = _volume(dtype, low, high)
    paths = write_volume_series(volume, AFFINES["sagittal"], tmp_path, StudyIds.fresh("TEST-P0004"),
                                transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(paths[1])
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, bits, bits - 1, signed)
    assert np.array_equal(ds.pixel_array, volume[1])


def test_slice_study_is_one_axial_file_with_the_given_spacing(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (48, 64)).astype(np.uint8)
    paths = write_slice_study(image, 0.49, tmp_path, StudyIds.fresh("FIGSHARE-P0001"), contrast_agent=None)

    assert [p.name for p in paths] == ["slice0000.dcm"]
    ds = pydicom.dcmread(paths[0])
    assert [float(v) for v in ds.PixelSpacing] == [0.49, 0.49]
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in ds.ImagePositionPatient] == [0, 0, 0]
    assert float(ds.SliceThickness) == 6.0 and (ds.Rows, ds.Columns) == (48, 64)
    assert "ContrastBolusAgent" not in ds
    assert np.array_equal(ds.pixel_array, image)


def test_refusals_say_what_was_expected(tmp_path):
    ids, volume, affine = StudyIds.fresh("TEST-P0005"), _volume(), AFFINES["axial-offset"]
    sheared = affine.copy()
    sheared[0, 2] = 1.0
    with pytest.raises(ValueError, match="slice axis along the image normal"):
        write_volume_series(volume, sheared, tmp_path / "a", ids)
    with pytest.raises(ValueError, match="expected dtype uint8, uint16 or int16, found float32"):
        write_volume_series(volume.astype(np.float32), affine, tmp_path / "b", ids)
    with pytest.raises(ValueError, match="at least 32x32 pixels"):
        write_volume_series(volume[:, :16], affine, tmp_path / "c", ids, transfer_syntax=JPEG2000Lossless)
    with pytest.raises(ValueError, match="expected one of"):
        write_volume_series(volume, affine, tmp_path / "d", ids, transfer_syntax="1.2.840.10008.1.2.4.50")
    with pytest.raises(ValueError, match="expected a DICOM UID"):
        StudyIds("TEST-P0005", "Synthetic^Five", "1.2.03", pydicom.uid.generate_uid())
    assert not any(tmp_path.iterdir())  # nothing half-written
    write_volume_series(volume, affine, tmp_path / "e", ids)
    with pytest.raises(FileExistsError, match="expected no slice files yet"):
        write_volume_series(volume, affine, tmp_path / "e", ids)

