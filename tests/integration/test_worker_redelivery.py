"""A worker killed with SIGKILL in the middle of a study: the task comes back (acks late, visibility
timeout), another worker completes it once; and a task delivered past the cap is given up as poison."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from services.worker.tasks import run_once
from shared.broker.delivery import KEY_PREFIX
from shared.contracts.tasks import StudyReady
from shared.contracts.vectors import collection_name
from shared.dicomize.writer import StudyIds, affine_lps_from_file, write_volume_series
from shared.study_status_store import StudyStatusStore
from shared.vectorstore.base import Filter, Match
from support.worker import worker_system

pytestmark = pytest.mark.integration

VISIBILITY_S = 60  # the smallest the settings allow: the test waits this long for the redelivery


def test_a_study_interrupted_by_sigkill_is_redelivered_and_completes_once(tmp_path, redis_server, data_dir):
    volume, affine = affine_lps_from_file(data_dir / "volumes/tcga-gbm-t1c/brain1_image.nrrd")
    files = write_volume_series(volume, affine, tmp_path / "study", StudyIds.fresh("TEST-KILL"))
    with worker_system(tmp_path, redis_server.url, start=False, soft_time_limit_s=25) as system:
        system.env["TUMORSEARCH_BROKER__VISIBILITY_TIMEOUT_S"] = str(VISIBILITY_S)
        first = system.start_worker("first")
        study_uid = system.place(files)
        system.hand_over(study_uid)
        first.wait_until(lambda: (s := system.status(study_uid)) is not None and s.state == "processing", 60,
                         "the study to be processing")
        os.killpg(first.pid, signal.SIGKILL)  # mid-study, no warm shutdown
        first.stop(grace=0)  # reap it
        assert system.status(study_uid).state == "processing"
        started = time.monotonic()
        second = system.start_worker("second")
        status = system.wait_status(study_uid, timeout=VISIBILITY_S + 60)
        assert status.state == "done", status
        assert time.monotonic() - started < VISIBILITY_S + 60
        assert second.log_path.read_text().count("study processed") == 1
        stored = system.store.count(collection_name(status.model_version),
                                    Filter(must=(Match("study_instance_uid", study_uid),)))
        assert stored == status.tumours == len(set(status.point_ids))


def test_a_task_delivered_past_the_cap_is_given_up_as_poison(redis_server, tmp_path):
    client = redis.Redis.from_url(redis_server.url)
    client.set(KEY_PREFIX + "task-1", 3)  # three deliveries already: each one killed its worker
    statuses = StudyStatusStore(client)
    ready = StudyReady(study_instance_uid="1.2.3.4", location="studies/ab/" + "ab" * 16, instance_count=1, handover=1)

    class Context:  # only what run_once reads before it would touch the study
        redis, max_deliveries, delivery_ttl_s = client, 3, 600

    status = run_once("task-1", ready, Context, statuses)
    assert status.state == "failed" and "given up after 3 deliveries" in status.reason
