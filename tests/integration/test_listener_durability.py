"""kill -9 of the listener while dcmtk's storescu streams a study: every instance that was acknowledged is
on disk byte for byte and handed over after the restart; and a disk that fills up inside an open
association is answered 0xA700 for that C-STORE only."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from services.bench.listener import synthesize_series
from shared.contracts.storage import StudyLayout
from support.dcmtk import STORESCU, TIMEOUT_ARGS
from support.ports import LOCALHOST
from support.listener import LISTENER_AE, Listener, split_part10, start_listener, study_messages

pytestmark = pytest.mark.integration

INSTANCES = 50
SEED = 4  # the issue number: fixed, so a failing kill moment can be replayed
SENDING, ACKNOWLEDGED = "I: Sending file: ", "Received Store Response (Success)"


@dataclass(frozen=True)
class KillMoment:
    after_acks: int  # storescu has printed this many success responses…
    # …and the group gets SIGKILL this fraction of one instance's mean round trip later: anywhere between
    # the next request's first byte, its write and fsync, and its response.
    fraction: float


def kill_moments(count: int) -> list[KillMoment]:
    rng = random.Random(SEED)
    return [KillMoment(rng.randint(1, INSTANCES - 2), rng.random()) for _ in range(count)]


def send_until_killed(port: int, paths: list[Path], listener: Listener, moment: KillMoment) -> tuple[list[Path], str]:
    """storescu sends every path in one association; the listener's process group is killed at `moment`.

    Returns the files whose C-STORE was answered with success (storescu -v prints "Sending file: P" and
    then, for that file, "Received Store Response (Success)"; it sends one request at a time) and the
    whole storescu output. Lines printed before the kill stay in the pipe, so none is missed. Started here
    rather than through the dcmtk fixture, which returns only once storescu exited: the kill must land while
    it runs (same binary, timeouts and TCP_NODELAY=1).
    """
    argv = [str(STORESCU), "-v", *TIMEOUT_ARGS, "-aet", "PACS", "-aec", LISTENER_AE, LOCALHOST, str(port),
            *map(str, paths)]
    storescu = subprocess.Popen(argv, env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    acknowledged: list[Path] = []
    current: Path | None = None
    output: list[str] = []
    first_sent = 0.0
    try:
        for line in storescu.stdout:
            output.append(line)
            if line.startswith(SENDING):
                current = Path(line[len(SENDING):].strip())
                first_sent = first_sent or time.monotonic()
            elif ACKNOWLEDGED in line:
                assert current is not None, f"expected 'Sending file' before a response; found\n{''.join(output)}"
                acknowledged.append(current)
                current = None
                if len(acknowledged) == moment.after_acks:
                    time.sleep(moment.fraction * (time.monotonic() - first_sent) / len(acknowledged))
                    os.killpg(listener.process.pid, signal.SIGKILL)
        storescu.wait(timeout=60)
    finally:
        if storescu.poll() is None:
            storescu.kill()
            storescu.wait()
    return acknowledged, "".join(output)


def check_study_on_disk(layout: StudyLayout, study_uid: str, paths: list[Path], acknowledged: list[Path]) -> int:
    """Every acknowledged file is stored with the dataset bytes it was sent with; every stored file (acknowledged
    or not) is whole and is one of those sent. Returns how many files the study folder holds."""
    expected = {layout.instance_path(study_uid, pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
                for p in paths}
    missing = [p.name for stored, p in expected.items() if p in acknowledged and not stored.is_file()]
    assert missing == [], f"expected every acknowledged instance on disk; found {len(missing)} missing: {missing}"
    held = sorted(layout.study_dir(study_uid).glob("*.dcm"))
    strangers = [stored.name for stored in held if stored not in expected]
    assert strangers == [], f"expected only the sent instances in the study folder; found others: {strangers}"
    for stored in held:
        assert split_part10(stored.read_bytes()) == split_part10(expected[stored].read_bytes()), \
            f"{expected[stored].name}: expected the dataset as sent (transfer syntax and bytes); found other bytes"
    return len(held)


def kill_restart_and_check(workdir: Path, redis_url: str, dcmtk, home: Path, moment: KillMoment, name: str) -> None:
    paths = synthesize_series(workdir / f"{name}-series", slices=INSTANCES, size=64)
    study_uid = pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID
    with start_listener(workdir, redis_url, home=home, name=f"{name}-killed") as listener:
        acknowledged, output = send_until_killed(listener.port, paths, listener, moment)
        port = listener.port
    assert len(acknowledged) >= moment.after_acks, \
        f"expected at least {moment.after_acks} acknowledgements; found {len(acknowledged)}\n{output}"
    # Restarted on the same port, home and Redis, as a supervisor would.
    with start_listener(workdir, redis_url, home=home, port=port, name=f"{name}-restarted") as restarted:
        messages = study_messages(redis_url, wait_s=20, expect=1)
        layout = StudyLayout(home)
        held = check_study_on_disk(layout, study_uid, paths, acknowledged)
        assert [(m["study_instance_uid"], m["location"], m["instance_count"]) for m in messages] == \
            [(study_uid, layout.study_location(study_uid), held)], \
            f"{moment}: expected one hand-over of the study with the {held} files on disk " \
            f"({len(acknowledged)} acknowledged); found {messages}\n{restarted.log()}"
        # The PACS retries the whole study: the restarted listener completes it and hands it over again.
        done = dcmtk.storescu(port, paths, called_aet=LISTENER_AE)
        assert done.returncode == 0, f"expected the re-send to succeed; found\n{done.stderr}"
        again = study_messages(redis_url, wait_s=20, expect=1)
        assert [(m["instance_count"], m["handover"]) for m in again] == [(INSTANCES, 2)], again


def test_acknowledged_instances_survive_kill_9_at_three_random_moments(tmp_path: Path, redis_server, dcmtk):
    # One home for all rounds: each restart also finds what the earlier kills left behind.
    for number, moment in enumerate(kill_moments(3)):
        kill_restart_and_check(tmp_path, redis_server.url, dcmtk, tmp_path / "home", moment, f"round{number}")


def fill_disk(folder: Path, under_mb: float) -> Path:
    """A preallocated file that leaves less than `under_mb` MiB free on `folder`'s file system."""
    free_mb = shutil.disk_usage(folder).free / 2**20
    size = int((free_mb - under_mb + 2048) * 2**20)  # 2 GiB below: other writers on this disk cannot undo it
    filler = folder / "filler.bin"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(descriptor, 0, size)
    finally:
        os.close(descriptor)
    return filler


def wait_free_above(folder: Path, mb: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while shutil.disk_usage(folder).free / 2**20 <= mb:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected more than {mb:.0f} MiB free after removing the filler; found "
                                 f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB")
        time.sleep(0.1)


def test_disk_filling_up_inside_an_open_association_answers_a700(tmp_path: Path, redis_server):
    """The watermark is read on every C-STORE, so the only way to cross it from outside mid-association is
    to really use up the disk: a fallocated file (no data written, removed at once) leaving the listener's
    file system 2 GiB under a watermark set 1 GiB below today's free space."""
    free_mb = shutil.disk_usage(tmp_path).free / 2**20
    if free_mb < 8 * 1024:
        pytest.skip(f"expected at least 8 GiB free to move the free space across the watermark; "
                    f"found {free_mb:.0f} MiB")
    watermark = int(free_mb) - 1024
    paths = synthesize_series(tmp_path / "series", slices=3, size=64)
    with start_listener(tmp_path, redis_server.url, min_free_disk_mb=watermark) as listener:
        ae = AE(ae_title="PACS")
        ae.add_requested_context(MRImageStorage, ["1.2.840.10008.1.2.1"])
        assoc = ae.associate(LOCALHOST, listener.port, ae_title=LISTENER_AE)
        assert assoc.is_established, f"expected the association admitted above the watermark\n{listener.log()}"
        statuses = []
        try:
            statuses.append(assoc.send_c_store(pydicom.dcmread(paths[0])).Status)
            filler = fill_disk(tmp_path, under_mb=watermark)
            try:
                statuses.append(assoc.send_c_store(pydicom.dcmread(paths[1])).Status)
            finally:
                filler.unlink()
            wait_free_above(tmp_path, watermark)
            statuses.append(assoc.send_c_store(pydicom.dcmread(paths[2])).Status)
        finally:
            assoc.release()
        assert statuses == [0x0000, 0xA700, 0x0000], f"expected success, out of resources, success; found " \
                                                     f"{[hex(s) for s in statuses]}"
        layout = StudyLayout(listener.home)
        stored = [layout.instance_path(ds.StudyInstanceUID, ds.SOPInstanceUID).is_file()
                  for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in paths)]
        assert stored == [True, False, True], f"expected nothing written for the refused instance; found {stored}"
        listener.wait_for_log('"rejected": {"out_of_resources": 1}')


def test_start_removes_stale_temporary_files_and_keeps_fresh_ones(tmp_path: Path, redis_server):
    # A killed listener leaves `incoming/*.part` (never acknowledged); a replica may be writing a fresh one.
    incoming = tmp_path / "home" / "incoming"
    incoming.mkdir(parents=True)
    stale, fresh = incoming / "stale.part", incoming / "fresh.part"
    stale.write_bytes(b"half an instance")
    fresh.write_bytes(b"being written")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    with start_listener(tmp_path, redis_server.url, name="cleaner"):
        assert not stale.exists(), "expected the stale .part to be removed at start"
        assert fresh.exists(), "expected a fresh .part (a replica's write in progress) to be kept"
