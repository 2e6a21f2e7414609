"""A real TCGA-GBM NRRD volume written as a DICOM series: dcmtk reads it without a complaint, the geometry is
the NRRD header's own, and the labelled lesion maps through the written headers back onto voxels of the series."""

from pathlib import Path

import nrrd
import numpy as np
import pydicom
import pytest

from shared.dicomize.writer import StudyIds, affine_lps_from_file, write_volume_series
from support.dcmtk import run_tool

pytestmark = pytest.mark.integration

DCMDUMP = Path("/usr/bin/dcmdump")


@pytest.fixture(scope="module")
def brain1(data_dir, tmp_path_factory):
    """(volume, affine_lps, label volume, written paths) for brain1, written once for the module."""
    folder = data_dir / "volumes" / "tcga-gbm-t1c"
    volume, affine = affine_lps_from_file(folder / "brain1_image.nrrd")
    label, label_affine = affine_lps_from_file(folder / "brain1_label.nrrd")
    assert label.shape == volume.shape and np.allclose(label_affine, affine), "label and image grids differ"
    out = tmp_path_factory.mktemp("brain1") / "series"
    paths = write_volume_series(volume, affine, out, StudyIds.fresh("TCGA-SYNTH-0001"))
    return volume, affine, label, paths


def test_affine_is_the_nrrd_header_in_lps(data_dir, brain1):
    volume, affine, _, paths = brain1
    header = nrrd.read_header(str(data_dir / "volumes" / "tcga-gbm-t1c" / "brain1_image.nrrd"))
    assert header["space"] == "left-posterior-superior"
    assert np.allclose(affine[:3, :3], np.asarray(header["space directions"]).T)
    assert np.allclose(affine[:3, 3], header["space origin"])
    assert volume.shape == tuple(header["sizes"][::-1]) == (25, 256, 256) and len(paths) == 25
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, -1, 0]  # rows run anterior
    assert [float(v) for v in ds.PixelSpacing] == [0.78125, 0.78125] and float(ds.SliceThickness) == 6.5


@pytest.mark.parametrize("index", [0, 12, 24])
def test_dcmdump_reads_the_files_without_warnings(brain1, index):
    path = brain1[3][index]
    done = run_tool(DCMDUMP, [str(path)], timeout=30, check=False)
    complaints = [line for line in done.stderr.splitlines() + done.stdout.splitlines()
                  if line.startswith(("W:", "E:", "F:"))]
    assert done.returncode == 0 and not complaints, f"dcmdump {path}: exit {done.returncode}, {complaints}"
    assert "(0008,0016) UI =MRImageStorage" in done.stdout


def test_lesion_maps_through_the_written_headers_onto_the_series(brain1):
    volume, affine, label, paths = brain1
    k, j, i = np.nonzero(label)
    assert len(k) == 4137  # the data README's count: the same voxels, nothing lost in the transpose
    points = affine @ np.stack([i, j, k, np.ones_like(k)]).astype(float)  # lesion in patient LPS mm

    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    rebuilt = _affine_from_headers(headers)
    voxels = np.linalg.inv(rebuilt) @ points
    assert np.allclose(voxels, np.round(voxels), atol=1e-3)
    ii, jj, kk = np.round(voxels[:3]).astype(int)
    assert (0 <= ii).all() and (ii < volume.shape[2]).all() and (0 <= jj).all() and (jj < volume.shape[1]).all()
    assert (0 <= kk).all() and (kk < len(paths)).all()
    lesion_slices = {int(s): pydicom.dcmread(paths[s]).pixel_array for s in np.unique(kk)}
    values = np.array([lesion_slices[s][r, c] for s, r, c in zip(kk, jj, ii)])
    assert np.array_equal(values, volume[k, j, i])
    assert values.mean() > volume.mean()  # an enhancing tumour is brighter than the volume on average


def _affine_from_headers(headers) -> np.ndarray:
    """Voxel (i, j, k=InstanceNumber-1) -> LPS from IOP, IPP and PixelSpacing only."""
    by_instance = sorted(headers, key=lambda ds: ds.InstanceNumber)
    iop = np.array(by_instance[0].ImageOrientationPatient, dtype=float)
    between_rows, between_columns = (float(v) for v in by_instance[0].PixelSpacing)
    first, last = (np.array(ds.ImagePositionPatient, dtype=float) for ds in (by_instance[0], by_instance[-1]))
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = iop[:3] * between_columns, iop[3:] * between_rows
    affine[:3, 2], affine[:3, 3] = (last - first) / (len(by_instance) - 1), first
    return affine
