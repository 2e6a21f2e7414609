"""The walker that reads identifiers from a peer's encoded dataset: agrees with pydicom on real files,
refuses what it cannot follow, and never crashes nor hangs on arbitrary bytes (fuzzed)."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.filereader import _read_file_meta_info, read_preamble

from services.listener.dataset_ids import DatasetIds, Encoding, UnreadableDataset, read_ids

pytestmark = pytest.mark.unit
FILES = Path(__file__).resolve().parents[3] / "shared" / "data" / "dicom-transfer-syntaxes"


def dataset_part(path: Path) -> tuple[str, bytes]:
    raw = path.read_bytes()
    stream = io.BytesIO(raw)
    read_preamble(stream, False)
    meta = _read_file_meta_info(stream)
    return str(meta.TransferSyntaxUID), raw[stream.tell():]


SAMPLES = [dataset_part(FILES / f"{n}.dcm") for n in (1, 2, 3)] if FILES.is_dir() else []


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


def fuzz_once(data: bytes, syntax: str) -> None:
    started = time.monotonic()
    try:
        result = read_ids(data, Encoding.of(syntax))
        assert isinstance(result, DatasetIds)
    except UnreadableDataset:
        pass
    assert time.monotonic() - started < 1.0, f"expected a bounded walk; {len(data)} bytes took too long"


def mutated(sample: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(sample[:max(cut, 0)])
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    return bytes(data)


SYNTAXES = st.sampled_from(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"])
EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12)


def fuzz(seconds: float) -> int:
    """Random bytes and mutated real datasets, in rounds of hypothesis examples until `seconds` passed."""
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def one_round(data):
        if data.draw(st.booleans()):
            fuzz_once(data.draw(st.binary(max_size=2048)), data.draw(SYNTAXES))
        else:
            syntax, sample = data.draw(st.sampled_from(SAMPLES))
            fuzz_once(mutated(sample, data.draw(EDITS), data.draw(st.integers(0, 4096))), syntax)

    rounds = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        one_round()
        rounds += 1
    return rounds


def test_fuzz_walker_briefly():
    fuzz(5)


@pytest.mark.slow
def test_fuzz_walker_for_a_minute():
    fuzz(60)
