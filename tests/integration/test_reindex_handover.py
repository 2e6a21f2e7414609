"""`tumorsearch reindex` against a real Redis: which stored studies it hands over, with which hand-over
numbers, how it keeps the queue short, and what the command prints, writes and exits with."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from kombu.exceptions import OperationalError
from pydicom.uid import generate_uid

from services.reindex.handover import ReindexPlan, reindex_archive
from shared.contracts.handovers import HANDOVER_COUNTS
from shared.contracts.storage import StudyLayout
from shared.reprocessing import reprocessing_message
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import PROCESS_STUDY, STUDY_QUEUE
from shared.shipped_model import shipped_model_version
from shared.study_status_store import StudyStatusStore
from support.stored_studies import store_instance

pytestmark = pytest.mark.integration
TUMORSEARCH = Path(sys.executable).parent / "tumorsearch"
NEW, OLD = "pisov2d-c64-new0000000", "pisov2d-c64-old0000000"


def archive(home: Path, client: redis.Redis) -> dict[str, str]:
    """Six stored studies with every kind of status: name -> study UID."""
    layout, statuses, uids = StudyLayout(home), StudyStatusStore(client), {}
    for name, state, version, handover in [("current", "done", NEW, 1), ("current_empty", "no_tumour", NEW, 2),
                                           ("old", "done", OLD, 3), ("failed", "failed", None, 1),
                                           ("failed_on_its_data", "failed", NEW, 1),
                                           ("never_processed", None, None, 0)]:
        uids[name] = generate_uid()
        for _ in range(2):
            store_instance(layout, uids[name])
        if state is not None:
            statuses.put(StudyStatus(study_instance_uid=uids[name], state=state, model_version=version,
                                     handover=handover, updated_at=time.time()))
    return uids


def run(home: Path, client: redis.Redis, **plan) -> tuple[object, list[dict]]:
    sent: list[dict] = []
    tally = reindex_archive(StudyLayout(home), client, lambda name, kwargs: sent.append({"task": name, **kwargs}),
                            ReindexPlan(NEW, **plan), progress=False)
    return tally, sent


def test_studies_the_new_version_has_not_finished_are_handed_over_with_the_next_number(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    uids = archive(tmp_path, client)
    tally, sent = run(tmp_path, client)
    assert {m["task"] for m in sent} == {PROCESS_STUDY}
    handovers = {m["message"]["study_instance_uid"]: m["message"]["handover"] for m in sent}
    assert handovers == {uids["old"]: 4, uids["failed"]: 2, uids["never_processed"]: 1}
    assert all(m["message"]["instance_count"] == 2 for m in sent)
    assert (tally.folders, tally.handed_over, tally.current, tally.unreadable) == (6, 3, 3, [])
    assert tally.as_dict()["previous_model_versions"] == {OLD: 1, "(failed)": 1, "(no status)": 1}


def test_a_dry_run_sends_nothing_and_all_sends_everything(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    archive(tmp_path, client)
    tally, sent = run(tmp_path, client, dry_run=True)
    assert (tally.handed_over, tally.current, sent) == (3, 3, [])
    tally, sent = run(tmp_path, client, everything=True)
    assert (tally.handed_over, tally.current, len(sent)) == (6, 0, 6)


def test_numbers_are_shared_with_the_listener_and_never_repeat(tmp_path, redis_server):
    """The listener counts its hand-overs in the same hash: a re-index after the PACS re-sent the study twice
    must not reuse 2 or 3, and two re-indexes of one study never share a number."""
    client = redis.Redis.from_url(redis_server.url)
    uids = archive(tmp_path, client)
    client.hset(HANDOVER_COUNTS, uids["old"], 7)  # the listener handed it over 7 times; its status says 3
    statuses = StudyStatusStore(client)
    numbers = [reprocessing_message(StudyLayout(tmp_path), client, uids["old"], statuses.get(uids["old"])).handover
               for _ in range(2)]
    assert numbers == [8, 9]
    current = reprocessing_message(StudyLayout(tmp_path), client, uids["current"], statuses.get(uids["current"]))
    assert current.handover == 2  # status 1, no count


def test_a_study_the_listener_still_owes_a_handover_is_left_to_it(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    uids = archive(tmp_path, client)
    layout = StudyLayout(tmp_path)
    layout.outbox.mkdir(parents=True)
    key = layout.study_location(uids["never_processed"]).rsplit("/", 1)[1]
    (layout.outbox / f"{key}.0a1b2c3d4e5f.sending").write_text(uids["never_processed"])
    tally, sent = run(tmp_path, client)
    assert (tally.arriving, tally.handed_over) == (1, 2)
    assert uids["never_processed"] not in {m["message"]["study_instance_uid"] for m in sent}


def test_a_lost_broker_stops_the_walk_with_the_tally_so_far(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    archive(tmp_path, client)
    sent: list[str] = []

    def send_then_fail(name, kwargs):  # noqa: ANN001
        if sent:
            raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        sent.append(name)

    tally = reindex_archive(StudyLayout(tmp_path), client, send_then_fail, ReindexPlan(NEW), progress=False)
    assert tally.handed_over == 1 and tally.folders < 6
    assert tally.stopped == "the broker stopped answering (OperationalError); run again to go on"


def test_it_waits_while_the_queue_is_full(tmp_path, redis_server):
    """New studies from the PACS must not wait behind the whole archive: at most max_queued are waiting."""
    client = redis.Redis.from_url(redis_server.url)
    archive(tmp_path, client)
    client.rpush(STUDY_QUEUE, "a", "b")
    sent: list[float] = []
    worker = threading.Thread(target=reindex_archive, args=(
        StudyLayout(tmp_path), client, lambda name, kwargs: sent.append(time.monotonic()),
        ReindexPlan(NEW, max_queued=2, poll_s=0.02), False))
    worker.start()
    time.sleep(0.5)
    assert sent == [], "expected no hand-over while 2 studies wait in the queue"
    freed = time.monotonic()
    client.lpop(STUDY_QUEUE)
    worker.join(timeout=10)
    assert len(sent) == 3 and sent[0] >= freed


def command_env(home: Path, broker_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TUMORSEARCH_")}
    env.update({"TUMORSEARCH_HOME": str(home), "TUMORSEARCH_BROKER__URL": broker_url,
                "TUMORSEARCH_LOG__FORMAT": "json"})
    return env


def queued_messages(client: redis.Redis) -> list[dict]:
    """The Celery messages waiting in the worker's queue, decoded as the worker would."""
    bodies = [json.loads(raw) for raw in client.lrange(STUDY_QUEUE, 0, -1)]
    return [{"task": b["headers"]["task"], **json.loads(base64.b64decode(b["body"]))[1]} for b in bodies]


def test_the_command_queues_celery_tasks_writes_its_summary_and_reports_bad_folders(tmp_path, redis_server):
    home, client = tmp_path / "home", redis.Redis.from_url(redis_server.url)
    uids = archive(home, client)
    misplaced_uid, folder_uid = generate_uid(), generate_uid()
    store_instance(StudyLayout(home), misplaced_uid, folder_uid=folder_uid)  # a misplaced file
    out = tmp_path / "summary.json"
    done = subprocess.run([str(TUMORSEARCH), "reindex", "--model-version", NEW, "--json", str(out), "--no-progress"],
                          env=command_env(home, redis_server.url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # one folder could not be handed over
    summary = json.loads(out.read_text())
    assert (summary["folders"], summary["handed_over"], summary["current"], summary["unreadable"]) == (7, 3, 3, 1)
    assert f"7 stored studies: handed over 3, 3 already processed by {NEW}, 0 still arriving" in done.stdout
    queued = queued_messages(client)
    assert sorted(m["message"]["study_instance_uid"] for m in queued) == sorted(
        uids[k] for k in ("old", "failed", "never_processed"))
    assert {m["task"] for m in queued} == {PROCESS_STUDY}
    for uid in [*uids.values(), misplaced_uid, folder_uid]:  # no identifier on the console or in the logs
        assert uid not in done.stdout and uid not in done.stderr


def test_the_command_names_the_shipped_version_and_says_when_the_broker_is_not_there(tmp_path, redis_server,
                                                                                     free_port):
    home = tmp_path / "home"
    archive(home, redis.Redis.from_url(redis_server.url))
    dry = subprocess.run([str(TUMORSEARCH), "reindex", "--dry-run", "--no-progress"],
                         env=command_env(home, redis_server.url), capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert f"would hand over 6, 0 already processed by {shipped_model_version()}" in dry.stdout
    gone = subprocess.run([str(TUMORSEARCH), "reindex", "--no-progress"],
                          env=command_env(home, f"redis://127.0.0.1:{free_port()}/0"), capture_output=True,
                          text=True, timeout=60)
    assert gone.returncode == 1 and "expected the broker (TUMORSEARCH_BROKER__URL) to answer" in gone.stderr


def test_the_command_keeps_at_most_max_queued_studies_waiting(tmp_path, redis_server):
    """No worker takes them: the command must stop at 2 queued Celery tasks and go on when one is taken."""
    home, client = tmp_path / "home", redis.Redis.from_url(redis_server.url)
    archive(home, client)
    command = subprocess.Popen([str(TUMORSEARCH), "reindex", "--model-version", NEW, "--max-queued", "2",
                                "--no-progress"], env=command_env(home, redis_server.url), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while client.llen(STUDY_QUEUE) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # it polls every second: time to send a third if it would
        assert client.llen(STUDY_QUEUE) == 2 and command.poll() is None
        client.lpop(STUDY_QUEUE)
        out, err = command.communicate(timeout=30)
    finally:
        command.kill()
    assert command.returncode == 0, err
    assert "handed over 3" in out and client.llen(STUDY_QUEUE) == 2
