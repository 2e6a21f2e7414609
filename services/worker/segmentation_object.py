"""The worker's DICOM Segmentation (SEG) of the tumours it found, and the C-STORE that sends it back to the PACS.

One BINARY Segmentation instance per study series: one segment per tumour, built with highdicom from the label
volume the model produced, referring to the source images so a viewer overlays it on the series it came from.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.sop_class import SegmentationStorage

# The 2D figshare classes and the 3D path's (shared.model.volumes.VOLUME_TYPES).
TUMOR_TYPES = ("meningioma", "glioma", "pituitary", "metastasis")
MANUFACTURER = "TumorSearch"
ALGORITHM_NAME = "TumorSearch"
CONTENT_LABEL = "TUMORSEARCH"  # CS: upper case, at most 16 characters
SUCCESS = 0x0000
MAX_LO = 64  # the length limit of the LO attributes model_version ends up in (SoftwareVersions, AlgorithmVersion)
MAX_AE = 16

# Type 2 attributes highdicom reads with plain attribute access from the first source (its Patient and General
# Study modules); real archives often omit them, and a missing one would otherwise fail the whole SEG.
_TYPE2_HEADER = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                 "StudyDate", "StudyTime", "ReferringPhysicianName")
_PATIENT_SEX = {"M", "F", "O"}


@dataclass(frozen=True)
class SegmentInfo:
    label: int  # 1..N, the value of this tumour in the label volume
    tumor_type: str  # "meningioma" | "glioma" | "pituitary" (predicted)
    probability: float  # predicted probability of that type

    def __post_init__(self) -> None:
        if self.tumor_type not in TUMOR_TYPES:
            raise ValueError(f"expected tumor_type one of {TUMOR_TYPES}; found {self.tumor_type!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"expected a probability in [0, 1]; found {self.probability!r}")


class SegmentationSendError(ConnectionError):
    """The SEG did not reach the peer (unreachable, association rejected or aborted): worth retrying later."""


def build_segmentation(sources: list[Dataset], labels: np.ndarray, segments: list[SegmentInfo], *,
                       model_version: str, series_number: int = 9901, series_uid: str | None = None,
                       sop_instance_uid: str | None = None) -> Dataset:
    """A highdicom BINARY Segmentation of the tumours in `labels` (K, rows, cols), labels[k] lying on sources[k]
    (single-frame images in volume order) or on frame k of a single multi-frame source. `series_uid` and
    `sop_instance_uid` make a re-run produce the same object (fresh UIDs when not given)."""
    if not sources:
        raise ValueError("expected at least one source image; found none")
    if not model_version or len(model_version) > MAX_LO:
        raise ValueError(f"expected a model_version of 1..{MAX_LO} characters; found {model_version!r}")
    label_map = _checked_labels(labels, segments, sources)
    headers = [_header_only(source) for source in sources]
    return hd.seg.Segmentation(
        source_images=headers,
        pixel_array=label_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment_description(info, model_version) for info in sorted(
            segments, key=lambda info: info.label)],
        series_instance_uid=series_uid or generate_uid(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=ALGORITHM_NAME,
        software_versions=model_version,
        # Software has no serial number; the model version is what tells two producers of these objects apart.
        device_serial_number=model_version,
        series_description="TumorSearch tumour segmentation",
        content_label=CONTENT_LABEL,
        content_description="Brain tumours found by TumorSearch",
        omit_empty_frames=True,
        transfer_syntax_uid=ExplicitVRLittleEndian,  # what every PACS (Orthanc included) accepts
    )


def _frame_count(sources: Sequence[Dataset]) -> int:
    # Enhanced MR and other multi-frame IODs always carry NumberOfFrames; a classic MR series never does.
    if len(sources) == 1 and "NumberOfFrames" in sources[0]:
        return int(sources[0].NumberOfFrames)
    return len(sources)


def _checked_labels(labels: np.ndarray, segments: Sequence[SegmentInfo], sources: Sequence[Dataset]) -> np.ndarray:
    """The label volume as an unsigned array, after checking it against the sources and the segments."""
    labels = np.asarray(labels)
    frames, first = _frame_count(sources), sources[0]
    expected_shape = (frames, int(first.Rows), int(first.Columns))
    if labels.shape != expected_shape:
        raise ValueError(f"expected labels of shape {expected_shape} (frames, rows, columns of the sources); "
                         f"found {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"expected an integer label volume; found dtype {labels.dtype}")
    described = sorted(info.label for info in segments)
    # highdicom numbers BINARY segments 1..N with no gap, and a label-map input needs every value described.
    if described != list(range(1, len(segments) + 1)):
        raise ValueError(f"expected segments labelled 1..N without gaps or repeats; found labels {described}")
    present = {int(value) for value in np.unique(labels)}
    if not present <= {0, *described}:
        raise ValueError(f"expected label values in 0..{len(described)} (0 = background); "
                         f"found values {sorted(present - {0, *described})} with no SegmentInfo")
    missing = sorted(set(described) - present)
    if missing:
        raise ValueError(f"expected every described tumour in the label volume; found no voxels for labels {missing}")
    return labels.astype(np.uint8 if len(described) < 256 else np.uint16)


def _header_only(source: Dataset) -> Dataset:
    """The source's attributes without its pixels (highdicom needs only metadata; the copy keeps the caller's
    dataset untouched), with empty values for Type 2 attributes the archive left out or filled invalidly."""
    header = Dataset()
    header.update({tag: element for tag, element in source.items() if tag != 0x7FE00010})
    for keyword in _TYPE2_HEADER:
        if keyword not in header:
            setattr(header, keyword, None)
    if header.PatientSex not in _PATIENT_SEX:
        del header.PatientSex  # a new element, not an assignment: that would change the caller's shared element
        header.PatientSex = None  # highdicom accepts only M, F, O or empty
    return header


def _segment_description(info: SegmentInfo, model_version: str) -> hd.seg.SegmentDescription:
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, family=codes.cid7162.ArtificialIntelligence, version=model_version)
    return hd.seg.SegmentDescription(
        segment_number=info.label,
        # The type is a prediction, so it goes into the label text; the coded property stays the certain part.
        segment_label=f"Tumour {info.label}: {info.tumor_type} (p={info.probability:.2f})",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        anatomic_regions=[codes.SCT.Brain],
    )


def segmentation_bytes(seg: Dataset) -> bytes:
    """Part-10 bytes (preamble, file meta, dataset), for writing it durably (the caller writes the file)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, seg, enforce_file_format=True)
    return buffer.getvalue()


def parse_destination(text: str) -> tuple[str, str, int]:
    """'AE@host:port' -> (ae, host, port), validated (AE ≤ 16 characters, port 1..65535); ValueError otherwise."""
    ae, at, address = text.rpartition("@")  # the last '@': a host never contains one
    host, colon, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [IPv6]:port
    if not at or not colon:
        raise ValueError(f"expected a destination written AE@host:port; found {text!r}")
    if not ae.strip() or len(ae) > MAX_AE or not re.fullmatch(r"[\x20-\x5b\x5d-\x7e]+", ae):
        raise ValueError(f"expected an AE title of 1..{MAX_AE} printable characters without '\\' in {text!r}; "
                         f"found {ae!r}")
    if not host or any(ch.isspace() for ch in host):
        raise ValueError(f"expected a host name or address in {text!r}; found {host!r}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected a port 1..65535 in {text!r}; found {port_text!r}")
    return ae, host, int(port_text)


def send_segmentation(seg: Dataset, destination: str, *, calling_ae: str = "TUMORSEARCH",
                      timeout_s: float = 30.0) -> int:
    """C-STORE `seg` to `destination` (AE@host:port); returns the DICOM status (0x0000 = success).

    Raises SegmentationSendError when the peer cannot be reached, rejects or aborts the association, or closes
    it before answering; a non-success status is returned, not raised (the caller decides what it means)."""
    called_ae, host, port = parse_destination(destination)
    ae = AE(ae_title=calling_ae)
    # Explicit first: it is the SEG's own encoding; implicit is the one syntax every SCP must accept.
    ae.add_requested_context(SegmentationStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    assoc = ae.associate(host, port, ae_title=called_ae)
    try:
        if not assoc.is_established:
            raise SegmentationSendError(_refusal(assoc, destination, timeout_s))
        status = assoc.send_c_store(seg)
        if "Status" not in status:
            raise SegmentationSendError(
                f"expected a C-STORE response from {destination}; found the association "
                f"{'aborted' if assoc.is_aborted else 'closed or timed out'} after {timeout_s:g} s without one")
        return int(status.Status)
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def _refusal(assoc, destination: str, timeout_s: float) -> str:
    """Why no association was established, in words an operator can act on."""
    answer = assoc.acceptor.primitive or _queued_answer(assoc)  # None when the peer never gave one
    if assoc.is_rejected or (answer is not None and answer.result in (0x01, 0x02)):
        return (f"expected {destination} to accept an association for Segmentation Storage; found it rejected "
                f"({answer.result_str}, source: {answer.source_str}, reason: {answer.reason_str})")
    if answer is not None and answer.result == 0x00:
        # pynetdicom aborts an accepted association in which no proposed context was accepted.
        return (f"expected {destination} to accept Segmentation Storage in explicit or implicit VR little endian; "
                "found no presentation context accepted (association aborted)")
    return (f"expected a DICOM peer accepting associations at {destination}; found none (connection refused or "
            f"unreachable, association aborted by the peer, or no answer within {timeout_s:g} s)")


def _queued_answer(assoc) -> A_ASSOCIATE | None:
    """The peer's A-ASSOCIATE answer left unread. pynetdicom 3.0 checks the socket before reading the answer
    (acse._negotiate_as_requestor), so a peer that rejects and closes at once (Orthanc does) is sometimes seen
    disconnected first: the association is aborted with the rejection still queued (2 runs in 10 here)."""
    queue = assoc.dul.to_user_queue
    while not queue.empty():
        item = queue.get_nowait()
        if isinstance(item, A_ASSOCIATE) and item.result in (0x01, 0x02):  # a rejection; an acceptance
            return item                                                      # then a close is no answer
    return None
