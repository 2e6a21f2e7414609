"""The worker's DICOM SEG: built from a synthetic MR series in memory, written as Part-10 bytes, read back with
highdicom, and checked against the sources it must refer to."""

from __future__ import annotations

import copy
import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, SegmentationStorage, generate_uid

from services.worker.segmentation_object import (
    SegmentInfo,
    build_segmentation,
    parse_destination,
    segmentation_bytes,
)

pytestmark = pytest.mark.unit

SLICES, SIZE = 5, 32
SEGMENTS = [SegmentInfo(1, "glioma", 0.91), SegmentInfo(2, "meningioma", 0.64)]


def mr_slice(k: int, study: str, series: str, frame_of_reference: str) -> Dataset:
    """One axial 16-bit MR slice of a synthetic patient, 2 mm apart along z."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Synthetic^Patient", "SYN-0001", "19700101", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20240102", "101500", "ACC1", "1"
    ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "", "MR", 3, k + 1
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-8.0, -8.0, 2.0 * k]
    ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = [0.5, 0.5], 2.0, 2.0
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(SIZE * SIZE, dtype=np.uint16).reshape(SIZE, SIZE) + k).tobytes()
    return ds


def mr_series() -> list[Dataset]:
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    return [mr_slice(k, study, series, frame_of_reference) for k in range(SLICES)]


def tumour_labels() -> np.ndarray:
    """Tumour 1 on slices 1 and 2, tumour 2 on slice 3; slices 0 and 4 are empty."""
    labels = np.zeros((SLICES, SIZE, SIZE), dtype=np.int64)  # the model's dtype: signed, wider than needed
    labels[1, 4:10, 5:12] = 1
    labels[2, 5:11, 6:12] = 1
    labels[3, 20:28, 18:30] = 2
    return labels


def read_back(seg: Dataset) -> hd.seg.Segmentation:
    return hd.seg.segread(io.BytesIO(segmentation_bytes(seg)))


def frames_by_segment(seg: Dataset) -> dict[int, set[str]]:
    """Segment number -> the source SOP instance UIDs its frames say they were derived from (highdicom orders the
    frames its own way, not necessarily as the sources were given)."""
    found: dict[int, set[str]] = {}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        number = frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        source = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        found.setdefault(number, set()).add(source)
    return found


@pytest.fixture(scope="module")
def series() -> list[Dataset]:
    return mr_series()


@pytest.fixture(scope="module")
def seg(series: list[Dataset]) -> hd.seg.Segmentation:
    return read_back(build_segmentation(series, tumour_labels(), SEGMENTS, model_version="mt-2024.1"))


def test_two_segments_with_labels_types_and_algorithm(seg: hd.seg.Segmentation) -> None:
    assert seg.segment_numbers == [1, 2]
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    first, second = seg.get_segment_description(1), seg.get_segment_description(2)
    assert first.SegmentLabel == "Tumour 1: glioma (p=0.91)"
    assert second.SegmentLabel == "Tumour 2: meningioma (p=0.64)"
    for item in (first, second):
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        assert item.SegmentAlgorithmName == "TumorSearch"
        assert item.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == "mt-2024.1"
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"  # SCT Neoplasm
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"  # morphologically abnormal


def test_each_tumour_maps_onto_its_source_instances_with_the_same_pixels(series, seg) -> None:
    uids = [ds.SOPInstanceUID for ds in series]
    assert frames_by_segment(seg) == {1: {uids[1], uids[2]}, 2: {uids[3]}}
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels, tumour_labels())
    only_second = seg.get_pixels_by_source_instance([uids[3]], segment_numbers=[2])
    np.testing.assert_array_equal(only_second[0, :, :, 0], tumour_labels()[3] == 2)


def test_empty_frames_are_omitted(seg) -> None:
    assert seg.NumberOfFrames == 3  # slices 1, 2 (tumour 1) and 3 (tumour 2); slices 0 and 4 are empty


def test_new_series_in_the_same_study_referring_to_the_source_series(series, seg) -> None:
    source = series[0]
    assert seg.SOPClassUID == SegmentationStorage and seg.Modality == "SEG"
    assert seg.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.SeriesInstanceUID != source.SeriesInstanceUID and seg.SeriesNumber == 9901
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert (seg.PatientID, str(seg.PatientName)) == ("SYN-0001", "Synthetic^Patient")
    assert seg.Manufacturer == "TumorSearch" and seg.SoftwareVersions == "mt-2024.1"
    [referenced] = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == {
        ds.SOPInstanceUID for ds in series}


def test_part10_bytes_have_preamble_and_meta(series) -> None:
    built = build_segmentation(series, tumour_labels(), SEGMENTS, model_version="v1")
    raw = segmentation_bytes(built)
    assert raw[128:132] == b"DICM"
    again = pydicom.dcmread(io.BytesIO(raw))
    assert again.file_meta.MediaStorageSOPInstanceUID == built.SOPInstanceUID
    assert build_segmentation(series, tumour_labels(), SEGMENTS, model_version="v1").SOPInstanceUID != \
        built.SOPInstanceUID  # a new instance each time


def test_sources_missing_type2_attributes_are_accepted_and_left_untouched() -> None:
    series = mr_series()
    for ds in series:
        del ds.AccessionNumber, ds.PatientBirthDate
        ds.PatientSex = "X"  # not a valid code; highdicom would refuse it
    before = [copy.deepcopy(ds) for ds in series]
    seg = read_back(build_segmentation(series, tumour_labels(), SEGMENTS, model_version="v1"))
    assert seg.PatientSex == "" and seg.AccessionNumber == ""
    assert series == before


def test_multiframe_source_labels_follow_its_frames() -> None:
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        mr_series(), series_instance_uid=generate_uid(), series_number=4, sop_instance_uid=generate_uid(),
        instance_number=1)
    # The frame order is the converter's; put each labels slice on the frame at the same z.
    z_of_frame = [frame.PlanePositionSequence[0].ImagePositionPatient[2]
                  for frame in enhanced.PerFrameFunctionalGroupsSequence]
    labels = tumour_labels()[[int(round(z / 2.0)) for z in z_of_frame]]
    seg = read_back(build_segmentation([enhanced], labels, SEGMENTS, model_version="v1"))
    assert seg.NumberOfFrames == 3
    pixels = seg.get_pixels_by_source_frame(enhanced.SOPInstanceUID, list(range(1, SLICES + 1)),
                                            combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels, labels)


@pytest.mark.parametrize(
    ("labels", "segments", "expected"),
    [
        (np.zeros((4, SIZE, SIZE), int), SEGMENTS, "expected labels of shape (5, 32, 32)"),
        (tumour_labels().astype(float), SEGMENTS, "expected an integer label volume"),
        (tumour_labels(), [SEGMENTS[0], SegmentInfo(3, "pituitary", 0.5)], "without gaps"),
        (tumour_labels(), SEGMENTS[:1], "found values [2] with no SegmentInfo"),
        (tumour_labels() * (tumour_labels() != 2), SEGMENTS, "found no voxels for labels [2]"),
    ],
)
def test_inconsistent_inputs_are_refused(series, labels, segments, expected) -> None:
    with pytest.raises(ValueError) as raised:
        build_segmentation(series, labels, segments, model_version="v1")
    assert expected in str(raised.value)


def test_segment_info_is_validated() -> None:
    with pytest.raises(ValueError, match="tumor_type"):
        SegmentInfo(1, "lymphoma", 0.5)
    with pytest.raises(ValueError, match="probability"):
        SegmentInfo(1, "glioma", 1.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ORTHANC@127.0.0.1:4242", ("ORTHANC", "127.0.0.1", 4242)),
        ("PACS_MAIN@pacs.hospital.example:104", ("PACS_MAIN", "pacs.hospital.example", 104)),
        ("A@[::1]:65535", ("A", "::1", 65535)),
        ("SIXTEEN_CHARS_AE@h:1", ("SIXTEEN_CHARS_AE", "h", 1)),
    ],
)
def test_parse_destination_accepts(text: str, expected: tuple[str, str, int]) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:4242", "ORTHANC@127.0.0.1", "@host:104", "SEVENTEEN_CHARS_A@h:104", "AE@host:0", "AE@host:65536",
     "AE@host:port", "AE@:104", "A\\B@host:104", "   @host:104", "AE@ho st:104", ""],
)
def test_parse_destination_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_destination(text)


def test_a_rejection_left_queued_by_pynetdicom_is_still_reported_as_a_rejection() -> None:
    """pynetdicom 3.0 may abort an association whose peer rejected it and closed the socket at once, leaving the
    A-ASSOCIATE-RJ unread in its queue (seen with Orthanc, CI 2026-12-06): the operator must read "rejected"
    and why, not "no DICOM peer there"."""
    import queue
    from types import SimpleNamespace

    from pynetdicom.pdu_primitives import A_ASSOCIATE

    from services.worker.segmentation_object import _refusal

    rejection = A_ASSOCIATE()
    rejection.result, rejection.result_source, rejection.diagnostic = 0x01, 0x01, 0x07
    waiting = queue.Queue()
    waiting.put(rejection)
    assoc = SimpleNamespace(acceptor=SimpleNamespace(primitive=None), is_rejected=False, is_aborted=True,
                            dul=SimpleNamespace(to_user_queue=waiting))
    message = _refusal(assoc, "PACS@10.0.0.1:104", 10.0)
    assert "found it rejected" in message and "Called AE title not recognised" in message, message
    nothing = SimpleNamespace(acceptor=SimpleNamespace(primitive=None), is_rejected=False, is_aborted=False,
                              dul=SimpleNamespace(to_user_queue=queue.Queue()))
    assert "found none" in _refusal(nothing, "PACS@10.0.0.1:104", 10.0)
