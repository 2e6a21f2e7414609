"""Fuzzing the listener's dataset walker (services/listener/dataset_ids.py): random bytes and mutated real
datasets, each walk checked to end in a result or UnreadableDataset within 1 s. Used by the 5 s unit test and
the 60 s run of the default test suite."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.filereader import _read_file_meta_info, read_preamble

from services.listener.dataset_ids import DatasetIds, Encoding, UnreadableDataset, read_ids

# The same data folder as the `data_dir` fixture (conftest.py): TUMORSEARCH_DATA_DIR, else ../shared/data.
DATA = Path(os.environ.get("TUMORSEARCH_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
FILES = DATA / "dicom-transfer-syntaxes"


def dataset_part(path: Path) -> tuple[str, bytes]:
    raw = path.read_bytes()
    stream = io.BytesIO(raw)
    read_preamble(stream, False)
    meta = _read_file_meta_info(stream)
    return str(meta.TransferSyntaxUID), raw[stream.tell():]


SAMPLES = [dataset_part(FILES / f"{n}.dcm") for n in (1, 2, 3)] if FILES.is_dir() else []


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
