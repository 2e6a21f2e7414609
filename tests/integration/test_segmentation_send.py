"""The worker's DICOM SEG reaches a real Orthanc by C-STORE; an unreachable or refusing peer raises a retryable
error."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from services.worker.segmentation_object import (
    SegmentationSendError,
    SegmentInfo,
    build_segmentation,
    send_segmentation,
)

pytestmark = pytest.mark.integration

SIZE = 16


def small_seg() -> Dataset:
    """A SEG of one tumour on the middle of three synthetic axial MR slices."""
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    slices = []
    for k in range(3):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, generate_uid(), "MR"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Synthetic^Send", "SYN-SEND", "", "F"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20240102", "101500", "", "1"
        ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0.0, 0.0, 3.0 * k]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 3.0
        ds.Rows = ds.Columns = SIZE
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.zeros((SIZE, SIZE), np.uint16).tobytes()
        slices.append(ds)
    labels = np.zeros((3, SIZE, SIZE), np.uint8)
    labels[1, 4:9, 4:9] = 1
    return build_segmentation(slices, labels, [SegmentInfo(1, "pituitary", 0.8)], model_version="test")


def test_seg_is_stored_by_orthanc(orthanc) -> None:
    seg = small_seg()
    status = send_segmentation(seg, f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}", timeout_s=10.0)
    assert status == 0x0000, f"expected C-STORE status 0x0000; found {status:#06x}"
    [instance] = orthanc.instances()
    tags = orthanc.get(f"/instances/{instance}/simplified-tags")
    assert tags["SOPInstanceUID"] == seg.SOPInstanceUID
    assert tags["Modality"] == "SEG" and tags["StudyInstanceUID"] == seg.StudyInstanceUID


def test_closed_port_raises_quickly(free_port) -> None:
    started = time.monotonic()
    with pytest.raises(SegmentationSendError, match="expected a DICOM peer") as raised:
        send_segmentation(small_seg(), f"NOBODY@127.0.0.1:{free_port()}", timeout_s=10.0)
    assert isinstance(raised.value, ConnectionError)  # callers retry it as transient
    assert time.monotonic() - started < 5.0


def test_rejected_association_says_why(orthanc_factory) -> None:
    strict = orthanc_factory(extra={"DicomCheckCalledAet": True})
    with pytest.raises(SegmentationSendError, match="rejected") as raised:
        send_segmentation(small_seg(), f"NOT_ORTHANC@{strict.host}:{strict.dicom_port}", timeout_s=10.0)
    assert "Called AE title not recognised" in str(raised.value)
    assert strict.instances() == []
