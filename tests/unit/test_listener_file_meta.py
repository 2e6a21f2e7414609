"""The listener's own File Meta encoder writes exactly what pynetdicom's `encoded_dataset()` would."""

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.uid import UID
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from services.listener.file_meta import PREAMBLE, file_header
from services.listener.scp import STORAGE_TRANSFER_SYNTAXES

MR = "1.2.840.10008.5.1.4.1.1.4"


def pynetdicom_header(sop_class: str, instance: str, syntax: str) -> bytes:
    meta = create_file_meta(sop_class_uid=UID(sop_class), sop_instance_uid=UID(instance), transfer_syntax=UID(syntax))
    return PREAMBLE + encode_file_meta(meta)


@pytest.mark.parametrize("syntax", STORAGE_TRANSFER_SYNTAXES)
@pytest.mark.parametrize("instance", ["1.2.3", "1.2.34", "2.25." + "9" * 59])  # odd, even, 64 characters
def test_header_is_byte_identical_to_pynetdicoms(syntax: str, instance: str) -> None:
    assert file_header(MR, instance, syntax) == pynetdicom_header(MR, instance, syntax)


def test_header_reads_back_with_pydicom() -> None:
    header = file_header(MR, "1.2.3.4", "1.2.840.10008.1.2.1")
    meta = dcmread(DicomBytesIO(header + b"\x08\x00\x18\x00UI\x08\x001.2.3.4\x00"), force=True).file_meta
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
