"""The one-machine upgrade path of docs/deploy.md: a study sent by C-STORE to `tumorsearch run` is processed,
then `tumorsearch reindex` beside the running system (the broker URL from the `ready` line) hands it to the
worker again with the next number of the listener's own hand-over counter, and the worker processes it again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
import redis

from shared.contracts.study_status import StudyStatus
from shared.dicomize.figshare import read_labels, read_pixels
from shared.dicomize.writer import StudyIds, write_slice_study
from shared.shipped_model import shipped_model_version
from shared.study_status_store import StudyStatusStore
from test_run_system import start_system, stop_and_check, system_env  # noqa: I001 - same folder

pytestmark = pytest.mark.e2e
TUMORSEARCH = Path(sys.executable).parent / "tumorsearch"
CLEAR_GLIOMA = 1873  # fold 5: a large glioma the shipped model finds


def figshare_study(data_dir: Path, image_id: int, out: Path) -> list[Path]:
    root = data_dir / "figshare-cetumor"
    image = next(i for i in read_labels(root) if i.image_id == image_id)
    return write_slice_study(read_pixels(root, image), image.spacing_mm, out, StudyIds.fresh(f"TEST-{image_id}"))


def final_status(client: redis.Redis, study_uid: str, handover: int, timeout_s: float = 120) -> StudyStatus:
    deadline, statuses = time.monotonic() + timeout_s, StudyStatusStore(client)
    while time.monotonic() < deadline:
        status = statuses.get(study_uid)
        if status is not None and status.handover == handover and status.state in ("done", "no_tumour", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"expected hand-over {handover} processed in {timeout_s} s; found {statuses.get(study_uid)}")


def test_reindex_beside_make_run_processes_a_received_study_again(tmp_path, dcmtk, data_dir):
    env = system_env(tmp_path / "home")
    proc, ready = start_system(env, tmp_path / "run.log")
    try:
        files = figshare_study(data_dir, CLEAR_GLIOMA, tmp_path / "study")
        sent = dcmtk.storescu(int(env["TUMORSEARCH_LISTENER__PORT"]), files, called_aet="TUMORSEARCH")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        client = redis.Redis.from_url(ready["broker"])
        study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        first = final_status(client, study_uid, handover=1)
        assert first.state == "done" and first.model_version == shipped_model_version()

        out = tmp_path / "reindex.json"
        current = subprocess.run([str(TUMORSEARCH), "reindex", "--json", str(out), "--no-progress"],
                                 env={**env, "TUMORSEARCH_BROKER__URL": ready["broker"]}, capture_output=True,
                                 text=True, timeout=60)
        assert current.returncode == 0, current.stderr
        assert (json.loads(out.read_text())["handed_over"], json.loads(out.read_text())["current"]) == (0, 1)
        again = subprocess.run([str(TUMORSEARCH), "reindex", "--all", "--json", str(out), "--no-progress"],
                               env={**env, "TUMORSEARCH_BROKER__URL": ready["broker"]}, capture_output=True,
                               text=True, timeout=60)
        assert again.returncode == 0 and json.loads(out.read_text())["handed_over"] == 1, again.stderr
        second = final_status(client, study_uid, handover=2)
        assert second.state == "done" and second.point_ids == first.point_ids  # idempotent: the same points
    finally:
        stop_and_check(proc, signal.SIGINT)
