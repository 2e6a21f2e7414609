"""`tumorsearch dicomize` on real data: six figshare images become six studies that dcmtk reads without a
complaint, that hold the PNG's pixels exactly and that a real Orthanc stores (fold tag included); the TCGA
brain1 volume with its label gives a lesion.json whose box is the label's own bounding box, in file order and
in the order a DICOM reader sorts the written slices."""

import csv
import json
import urllib.request
from pathlib import Path

import nrrd
import numpy as np
import pydicom
import pytest
from PIL import Image

from services.dicomize.main import command
from support.dcmtk import run_tool

pytestmark = pytest.mark.integration

DCMDUMP = Path("/usr/bin/dcmdump")
COUNT = 6


@pytest.fixture(scope="module")
def figshare_out(data_dir, tmp_path_factory):
    """(output folder, mapping rows) of the first six images of folds 1 and 2, written once for the module."""
    out = tmp_path_factory.mktemp("figshare") / "dicom"
    assert command(["--figshare", str(data_dir / "figshare-cetumor"), "--out", str(out), "--folds", "1,2",
                    "--limit", str(COUNT)]) == 0
    with (out / "mapping.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == COUNT and {row["fold"] for row in rows} <= {"1", "2"}
    return out, rows


def _complaints(path: Path) -> list[str]:
    done = run_tool(DCMDUMP, [str(path)], timeout=30, check=False)
    assert done.returncode == 0, f"dcmdump {path}: exit {done.returncode}: {done.stderr[-500:]}"
    return [line for line in done.stderr.splitlines() + done.stdout.splitlines()
            if line.startswith(("W:", "E:", "F:"))]


def test_dcmtk_reads_every_study_without_a_complaint_and_pixels_are_the_png(data_dir, figshare_out):
    out, rows = figshare_out
    for row in rows:
        path = out / row["folder"] / "slice0000.dcm"
        assert not _complaints(path), f"dcmdump {path}: {_complaints(path)}"
        ds = pydicom.dcmread(path)
        png = np.asarray(Image.open(data_dir / "figshare-cetumor" / "images" / f"{row['image_id']}.png"))
        assert np.array_equal(ds.pixel_array, png)
        assert ds.ClinicalTrialTimePointID == f"fold-{row['fold']}" and ds.SOPInstanceUID == row["sop_instance_uid"]


def test_orthanc_stores_the_six_studies(figshare_out, orthanc):
    out, rows = figshare_out
    for row in rows:
        body = (out / row["folder"] / "slice0000.dcm").read_bytes()
        request = urllib.request.Request(f"{orthanc.url}/instances", data=body, method="POST",
                                         headers={"Content-Type": "application/dicom"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            answer = json.loads(response.read())
        assert answer["Status"] == "Success", answer
        tags = orthanc.get(f"/instances/{answer['ID']}/simplified-tags")
        assert tags["ClinicalTrialTimePointID"] == f"fold-{row['fold']}"
        assert tags["StudyInstanceUID"] == row["study_instance_uid"] and tags["PatientID"] == row["patient_id"]
    assert len(orthanc.get("/studies")) == COUNT and len(orthanc.get("/patients")) == COUNT


def test_volume_lesion_box_is_the_labels_bounding_box(data_dir, tmp_path):
    folder = data_dir / "volumes" / "tcga-gbm-t1c"
    out = tmp_path / "brain1"
    assert command(["--volume", str(folder / "brain1_image.nrrd"), "--mask", str(folder / "brain1_label.nrrd"),
                    "--out", str(out), "--description", "T1 post-contrast (TCGA-GBM brain1)"]) == 0
    lesion = json.loads((out / "lesion.json").read_text())

    label, _ = nrrd.read(str(folder / "brain1_label.nrrd"))  # indexed [i, j, k] = [column, row, slice]
    i, j, k = np.nonzero(label)
    assert lesion["voxels"] == len(k) == 4137
    assert lesion["box_file_order"] == [int(k.min()), int(j.min()), int(i.min()),
                                        int(k.max()) + 1, int(j.max()) + 1, int(i.max()) + 1]

    paths = sorted((out / "series").glob("slice*.dcm"))
    assert len(paths) == lesion["shape"][0] == 25
    assert not _complaints(paths[0])
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    assert {h.SeriesDescription for h in headers} == {"T1 post-contrast (TCGA-GBM brain1)"}
    # A reader sorts slices along the normal; the lesion's slices in that order make box_voxels' slice range.
    iop = np.array(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    order = sorted(range(len(headers)), key=lambda n: float(np.dot(headers[n].ImagePositionPatient, normal)))
    reader_index = {file_index: position for position, file_index in enumerate(order)}
    reader_slices = [reader_index[int(s)] for s in k]
    box = lesion["box_voxels"]
    assert box == [min(reader_slices), int(j.min()), int(i.min()), max(reader_slices) + 1, int(j.max()) + 1,
                   int(i.max()) + 1]
    assert lesion["slices_reversed"] is True  # brain1's rows run anterior: its normal points against slice order

    with (out / "mapping.csv").open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["source"] == str((folder / "brain1_image.nrrd").resolve()) and row["slices"] == "25"
    assert {h.SeriesInstanceUID for h in headers} == {row["series_instance_uid"]}
    assert {h.StudyInstanceUID for h in headers} == {row["study_instance_uid"]}
