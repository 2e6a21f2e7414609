"""The walker that reads identifiers from a peer's encoded dataset: agrees with pydicom on real files,
refuses what it cannot follow, and never crashes nor hangs on arbitrary bytes (fuzzed)."""

from __future__ import annotations

import struct

import pydicom
import pytest

from services.listener.dataset_ids import DatasetIds, Encoding, UnreadableDataset, read_ids
from support.dataset_fuzz import FILES, SAMPLES, dataset_part, fuzz

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", [f"{n}.dcm" for n in range(1, 10)])
def test_reads_the_same_uids_as_pydicom(name):
    syntax, data = dataset_part(FILES / name)
    expected = pydicom.dcmread(FILES / name, stop_before_pixels=True)
    assert read_ids(data, Encoding.of(syntax)) == DatasetIds(
        expected.SOPClassUID, expected.SOPInstanceUID, expected.StudyInstanceUID, expected.SeriesInstanceUID)


def test_truncated_and_garbage_data_are_unreadable():
    syntax, data = SAMPLES[0]
    with pytest.raises(UnreadableDataset, match="expected"):
        read_ids(data[:13], Encoding.of(syntax))  # inside the first value
    with pytest.raises(UnreadableDataset):
        read_ids(struct.pack("<HHL", 0xFFFE, 0xE000, 0), Encoding.of(syntax))


def test_sequences_nested_too_deep_are_refused_without_recursion():
    level = struct.pack("<HHL", 0x0008, 0x1140, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
    with pytest.raises(UnreadableDataset, match="nested"):
        read_ids(level * 100_000, Encoding(implicit=True, little=True))


def test_fuzz_walker_briefly():
    fuzz(5)
