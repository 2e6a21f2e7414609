"""The 3D volume loader on small synthetic NRRD and NIfTI files with known spacing and orientation."""

import nibabel
import nrrd
import numpy as np
import pytest

from shared.model.preprocess import normalize_image
from shared.model.tasks import MISSING
from shared.model.volumes import (VOLUME_TYPES, VolumeEntry, fit_shape, load_volume, read_labels, read_volume,
                                  reorient, resample, resample_mask)

pytestmark = pytest.mark.unit

# A RAS (x, y, z) = (16, 12, 8) volume at 1 x 1 x 2 mm: intensity ramps, a bright block near +x
# (patient right), +z (superior), and a mask with labels 1 and 2.
SHAPE_RAS, ZOOMS_RAS = (16, 12, 8), (1.0, 1.0, 2.0)


def _ras_volume() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(100, 200, SHAPE_RAS).astype(np.int16)
    image[12:16, 4:8, 6:8] = 1000
    mask = np.zeros(SHAPE_RAS, np.int16)
    mask[12:14, 4:8, 6:8] = 1
    mask[14:16, 4:8, 6:8] = 2
    return image, mask


def _write_nifti(path, data, zooms=ZOOMS_RAS):
    nibabel.Nifti1Image(data, np.diag([*zooms, 1.0])).to_filename(str(path))
    return path


def _write_nrrd_lps(path, ras_data, zooms=ZOOMS_RAS):
    # The same physical volume stored LPS: x runs towards the left, y towards the back.
    header = {"space": "left-posterior-superior", "space directions": np.diag(zooms),
              "space origin": np.zeros(3)}
    nrrd.write(str(path), np.ascontiguousarray(ras_data[::-1, ::-1, :]), header)
    return path


def _entry(image, mask=None, volume_type=MISSING):
    return VolumeEntry("v", image, mask, 1, volume_type)


def test_nifti_is_reoriented_to_superior_posterior_left(tmp_path):
    image, _ = _ras_volume()
    data, affine = read_volume(_write_nifti(tmp_path / "a.nii.gz", image))
    oriented, spacing = reorient(data, affine)
    assert oriented.shape == (8, 12, 16) and spacing == (2.0, 1.0, 1.0)
    # The block was at high z (superior -> high D), mid y, high x (right -> low W, W runs to the left).
    assert oriented[6:8, :, 0:4].max() == 1000 and oriented[:6].max() < 1000 and oriented[:, :, 4:].max() < 1000
    # The array is (S, P, L): y towards anterior becomes H towards posterior.
    np.testing.assert_array_equal(oriented, image.transpose(2, 1, 0)[:, ::-1, ::-1])


def test_nrrd_lps_and_nifti_ras_of_one_volume_load_identically(tmp_path):
    image, mask = _ras_volume()
    a = load_volume(_entry(_write_nifti(tmp_path / "a.nii", image), _write_nifti(tmp_path / "m.nii", mask)),
                    2.0, (8, 8, 8))
    b = load_volume(_entry(_write_nrrd_lps(tmp_path / "a.nrrd", image), _write_nrrd_lps(tmp_path / "m.nrrd", mask)),
                    2.0, (8, 8, 8))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.mask.any(), "the tumour block must survive the crop, or the comparison proves nothing"
    assert a.source_spacing_mm == b.source_spacing_mm == (2.0, 1.0, 1.0)
    assert a.spacing_mm == b.spacing_mm == (2.0, 2.0, 2.0)


def test_no_resampling_needed_gives_exactly_the_2d_normalisation_rule(tmp_path):
    image, _ = _ras_volume()
    nifti = _write_nifti(tmp_path / "a.nii.gz", image, zooms=(2.0, 2.0, 2.0))
    volume = load_volume(_entry(nifti), 2.0, (8, 12, 16))
    expected = normalize_image(image.transpose(2, 1, 0)[:, ::-1, ::-1].astype(np.float32))
    np.testing.assert_allclose(volume.image, expected, atol=1e-6)
    assert volume.image.min() == -1.0 and volume.image.max() == 1.0 and volume.mask is None


def test_every_label_above_zero_is_tumour_and_survives_resampling(tmp_path):
    image, mask = _ras_volume()
    volume = load_volume(_entry(_write_nifti(tmp_path / "i.nii.gz", image), _write_nifti(tmp_path / "m.nii.gz", mask)),
                         2.0, (8, 8, 8))
    assert volume.mask.dtype == bool
    # 4 x 4 x 2 voxels of 1 x 1 x 2 mm = 64 mm³ -> 8 voxels of 2 mm, whether labelled 1 or 2.
    assert int(volume.mask.sum()) == 8


def test_resample_averages_when_shrinking_and_interpolates_when_growing():
    array = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    out, spacing = resample(array, (4.0, 1.0, 1.0), 2.0)
    assert out.shape == (8, 4, 4) and spacing == (2.0, 2.0, 2.0)
    assert out.mean() == pytest.approx(array.mean(), rel=1e-5)
    constant, _ = resample(np.full((5, 9, 9), 7.0, np.float32), (3.0, 0.7, 0.7), 2.0)
    np.testing.assert_allclose(constant, 7.0, rtol=1e-6)


def test_a_lesion_smaller_than_half_a_coarse_voxel_is_kept():
    mask = np.zeros((8, 8, 8), bool)
    mask[3, 3, 3] = True
    coarse = resample_mask(mask, (1.0, 1.0, 1.0), 4.0)
    assert coarse.shape == (2, 2, 2) and int(coarse.sum()) == 1


def test_fit_shape_crops_and_pads_around_the_centre():
    array = np.arange(6 * 2 * 4).reshape(6, 2, 4).astype(np.float32)
    out = fit_shape(array, (4, 4, 4), -1.0)
    np.testing.assert_array_equal(out[:, 1:3, :], array[1:5])
    assert (out[:, 0] == -1).all() and (out[:, 3] == -1).all()


def test_labels_csv_resolves_paths_and_missing_cells(tmp_path):
    image, mask = _ras_volume()
    _write_nifti(tmp_path / "a.nii.gz", image)
    _write_nifti(tmp_path / "m.nii.gz", mask)
    (tmp_path / "labels.csv").write_text("volume_id,image,mask,fold,type\n"
                                         "one,a.nii.gz,m.nii.gz,1,metastasis\n"
                                         "two,a.nii.gz,,2,\n")
    one, two = read_labels(tmp_path / "labels.csv")
    assert one.image == tmp_path / "a.nii.gz" and one.mask == tmp_path / "m.nii.gz"
    assert one.type == VOLUME_TYPES.index("metastasis") and one.fold == 1
    assert two.mask is None and two.type == MISSING and two.fold == 2


@pytest.mark.parametrize(("rows", "message"), [
    ("one,absent.nii.gz,,1,glioma\n", "expected the image file"),
    ("one,a.nii.gz,,1,astrocytoma\n", "expected type in"),
    ("one,a.nii.gz,,first,glioma\n", "expected an integer fold"),
    ("one,a.nii.gz,,1,\none,a.nii.gz,,1,\n", "expected unique volume_id"),
])
def test_labels_csv_errors_name_what_was_expected(tmp_path, rows, message):
    _write_nifti(tmp_path / "a.nii.gz", _ras_volume()[0])
    (tmp_path / "labels.csv").write_text("volume_id,image,mask,fold,type\n" + rows)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_labels(tmp_path / "labels.csv")


def test_labels_csv_with_another_header_is_refused(tmp_path):
    (tmp_path / "labels.csv").write_text("id,path\nx,y\n")
    with pytest.raises(ValueError, match="expected the header volume_id,image,mask,fold,type"):
        read_labels(tmp_path / "labels.csv")


def test_a_mask_on_another_grid_is_refused(tmp_path):
    image, mask = _ras_volume()
    entry = _entry(_write_nifti(tmp_path / "i.nii.gz", image), _write_nifti(tmp_path / "m.nii.gz", mask[:, :, :4]))
    expected = r"expected the mask .* on the image's grid \(16, 12, 8\).*found \(16, 12, 4\)"
    with pytest.raises(ValueError, match=expected):
        load_volume(entry, 2.0, (8, 8, 8))


def test_unreadable_files_and_bad_settings_are_explained(tmp_path):
    (tmp_path / "broken.nrrd").write_bytes(b"not a nrrd header\n")
    with pytest.raises(ValueError, match="expected a readable NRRD/NIfTI header"):
        read_volume(tmp_path / "broken.nrrd")
    (tmp_path / "volume.mha").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"expected \.nrrd, \.nhdr, \.nii or \.nii\.gz"):
        read_volume(tmp_path / "volume.mha")
    with pytest.raises(FileNotFoundError, match="expected a file at"):
        read_volume(tmp_path / "absent.nii.gz")
    nifti = _write_nifti(tmp_path / "a.nii.gz", _ras_volume()[0])
    with pytest.raises(ValueError, match="expected three positive multiples of 4"):
        load_volume(_entry(nifti), 2.0, (4, 8, 6))


def test_nrrd_in_an_unknown_space_is_refused(tmp_path):
    header = {"space": "scanner-xyz", "space directions": np.eye(3)}
    nrrd.write(str(tmp_path / "a.nrrd"), np.zeros((4, 4, 4), np.int16), header)
    with pytest.raises(ValueError, match="space: expected one of"):
        read_volume(tmp_path / "a.nrrd")
