"""What the listener tells its operators after real dcmtk peers talked to it: Prometheus counters, one JSON
line per association, and never a patient's name or ID, nor a UID a peer sent."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.bench.listener import synthesize_series
from services.listener.metrics import PREFIX
from shared.contracts.storage import StudyLayout
from support.listener import LISTENER_AE, Listener, study_messages

# pydicom warns about the non-conformant study UID we send on purpose.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")]

PATIENT_NAME, PATIENT_ID = "Secret^Patient", "PID-SECRET-123"
BAD_STUDY_UID = "1.2.840.0099.7"  # a component with a leading zero: not a conformant UID (0xC001)
CALLING_AE = "OBSERVER"
Samples = dict[tuple[str, tuple], float]


def patient_files(folder: Path, count: int, study_uid: str | None = None) -> list[Path]:
    """Synthetic MR files carrying a recognisable patient name and ID (and `study_uid` when given)."""
    paths = synthesize_series(folder, slices=count, size=64)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
        if study_uid is not None:
            ds.StudyInstanceUID = study_uid
        ds.save_as(path, enforce_file_format=True)
    return paths


def scrape(port: int) -> tuple[Samples, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return samples, text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((PREFIX + name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(port: int, name: str, expected: float, timeout: float = 10.0, **labels: str) -> tuple[Samples, str]:
    """Counters move when a connection closes or a hand-over is sent, a moment after the peer returned."""
    deadline = time.monotonic() + timeout
    while True:
        samples, text = scrape(port)
        if value(samples, name, **labels) == expected:
            return samples, text
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {PREFIX}{name}{labels or ''} = {expected} within {timeout}s; "
                                 f"found {value(samples, name, **labels)}\n{text}")
        time.sleep(0.1)


def association_lines(log: str) -> list[dict]:
    entries = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not every line of the process output is ours (a traceback would be text)
        if isinstance(entry, dict) and entry.get("msg") == "association":
            entries.append(entry)
    return entries


@dataclass
class Exchange:
    listener: Listener
    metrics_port: int
    before: Samples
    after: Samples
    metrics_text: str
    stored_bytes: int
    sent_uids: list[str]


@pytest.fixture
def exchange(listener_factory, redis_server, dcmtk, free_port, tmp_path: Path) -> Exchange:
    """One listener with metrics: a study of 3 stored instances, 1 refused instance, 1 rejected association."""
    metrics_port = free_port()
    listener = listener_factory(redis_server.url, metrics_port=metrics_port)
    good = patient_files(tmp_path / "good", 3)
    bad = patient_files(tmp_path / "bad", 1, study_uid=BAD_STUDY_UID)
    listener.wait_for_log('"result": "closed"')  # the harness's readiness probe: counted before we start
    before, _ = scrape(metrics_port)
    done = dcmtk.storescu(listener.port, good, called_aet=LISTENER_AE, calling_aet=CALLING_AE)
    assert done.returncode == 0 and done.stderr.count("Received Store Response (Success)") == 3, done.stderr
    refused = dcmtk.storescu(listener.port, bad, called_aet=LISTENER_AE, calling_aet=CALLING_AE)
    assert "Received Store Response" in refused.stderr and "(Success)" not in refused.stderr, refused.stderr
    rejected = dcmtk.echoscu(listener.port, called_aet="NOT-US", calling_aet=CALLING_AE)
    assert rejected.returncode != 0, f"expected the wrong called AE rejected; found\n{rejected.stderr}"
    assert len(study_messages(redis_server.url, wait_s=10, expect=1)) == 1, "expected the good study handed over"
    scrape_until(metrics_port, "associations_total", 1, result="rejected")
    after, text = scrape_until(metrics_port, "studies_handed_over_total", 1)
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in good + bad]
    layout = StudyLayout(listener.home)
    stored_bytes = sum(layout.instance_path(ds.StudyInstanceUID, ds.SOPInstanceUID).stat().st_size
                       for ds in datasets[:3])
    uids = [uid for ds in datasets for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)]
    return Exchange(listener, metrics_port, before, after, text, stored_bytes, uids)


COUNTERS = [  # (name, labels, how much the exchange adds)
    ("instances_received_total", {}, 3), ("instances_rejected_total", {"reason": "invalid_uid"}, 1),
    ("associations_total", {"result": "released"}, 2), ("associations_total", {"result": "rejected"}, 1),
    ("association_seconds_count", {}, 3), ("studies_handed_over_total", {}, 1), ("handover_failures_total", {}, 0),
]


def test_counters_follow_stored_refused_and_rejected_traffic(exchange: Exchange):
    counters = [*COUNTERS, ("bytes_received_total", {}, exchange.stored_bytes)]
    expected = {f"{name}{labels}": added for name, labels, added in counters}
    found = {f"{name}{labels}": value(exchange.after, name, **labels) - value(exchange.before, name, **labels)
             for name, labels, _ in counters}
    assert found == expected, f"expected these increases {expected}; found {found}"


def test_one_line_per_association_with_counts_and_no_patient_data(exchange: Exchange):
    every = association_lines(exchange.listener.wait_for_log('"result": "rejected: '))
    probe = {"peer": "127.0.0.1", "calling_aet": "", "instances": 0, "result": "closed"}
    assert every[0].items() >= probe.items(), f"expected the readiness probe's line first; found {every[0]}"
    lines = every[1:]
    summary = [{key: line.get(key) for key in ("peer", "calling_aet", "called_aet", "instances", "bytes",
                                               "rejected", "result")} for line in lines]
    peer = {"peer": "127.0.0.1", "calling_aet": CALLING_AE}
    assert summary == [
        {**peer, "called_aet": LISTENER_AE, "instances": 3, "bytes": exchange.stored_bytes, "rejected": {},
         "result": "released"},
        {**peer, "called_aet": LISTENER_AE, "instances": 0, "bytes": 0, "rejected": {"invalid_uid": 1},
         "result": "released"},
        {**peer, "called_aet": "NOT-US", "instances": 0, "bytes": 0, "rejected": {},
         "result": "rejected: called AE title not ours"},
    ], f"expected one line per association in order; found {summary}"
    durations = [line.get("duration_s") for line in lines]
    assert all(isinstance(d, (int, float)) and 0 <= d < 60 for d in durations), f"found durations {durations}"
    outputs = {"log": exchange.listener.log(), "metrics": exchange.metrics_text}
    needles = [PATIENT_NAME, PATIENT_ID, "Secret", "SECRET-123", BAD_STUDY_UID, *exchange.sent_uids]
    leaks = [(where, needle) for where, text in outputs.items() for needle in needles if needle in text]
    assert leaks == [], f"expected no patient data and no peer-sent UID in the listener's output; found {leaks}"
