"""`tumorsearch bench listener`: C-STORE throughput of our listener against dcmtk's own `storescp`.

One synthetic 160-slice 256x256 MR series (pydicom, into a temporary folder) is sent with dcmtk's
`storescu` over one association on loopback, `TCP_NODELAY=1` on both sides, first to `storescp`
(which writes files, no fsync) and to `tumorsearch listener` (fsync of the file and of its folder
before every acknowledgement, outbox marker, Redis), in turn, best of `--repeats` each. Figures and the machine: docs/listener.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from services.bench.host import machine
from shared.broker.embedded import DEBIAN_REDIS, EmbeddedBroker, free_port

STORESCU, STORESCP = "/usr/bin/storescu", "/usr/bin/storescp"
CALLING_AE, LISTENER_AE = "BENCH", "TUMORSEARCH"


def synthesize_series(folder: Path, slices: int, size: int, study_uid: str | None = None) -> list[Path]:
    """A single MR series of `slices` files (size x size, 16-bit, explicit VR LE); no patient data."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    rng = np.random.default_rng(7)
    paths = []
    for index in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Modality, ds.PatientName, ds.PatientID = "MR", "Synthetic^Bench", "SYNTH0001"
        ds.InstanceNumber, ds.ImagePositionPatient = index + 1, [0.0, 0.0, float(index)]
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
        path = folder / f"slice{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tumorsearch bench listener", description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="sends per server, in turn; the best is reported")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


@contextlib.contextmanager
def serving(argv: list[str], port: int | None, env: dict[str, str], log_path: Path,
            ready: Callable[[], bool] | None = None, timeout_s: float = 30.0):
    """Run argv until the block ends; ready when `ready()` says so (default: `port` accepts connections)."""
    ready = ready or (lambda: _port_open(port))
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"expected {argv[0]} to become ready; see {log_path}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def send_seconds(port: int, called_ae: str, files: list[Path]) -> float:
    """Seconds one storescu association takes to send every file (TCP_NODELAY=1)."""
    env = {**os.environ, "TCP_NODELAY": "1"}
    started = time.monotonic()
    subprocess.run([STORESCU, "-aet", CALLING_AE, "-aec", called_ae, "127.0.0.1", str(port), *map(str, files)],
                   env=env, check=True, capture_output=True)
    return time.monotonic() - started


def best_rates(targets: dict[str, tuple[int, str]], files: list[Path], repeats: int) -> dict[str, float]:
    """Best instances/s per target, sending to the targets in turn so both see the same machine state
    (disk and CPU noise on a shared VM moves either by ±20 % from one minute to the next)."""
    best = dict.fromkeys(targets, 0.0)
    for _ in range(repeats):
        for name, (port, called_ae) in targets.items():
            best[name] = max(best[name], len(files) / send_seconds(port, called_ae, files))
    return best


def command(argv: list[str]) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".bench-listener-") as work_dir, \
            contextlib.ExitStack() as servers:
        work = Path(work_dir)  # under the working directory: the same disk the listener's home uses
        files = synthesize_series(work / "series", args.slices, args.size)
        env = {**os.environ, "TCP_NODELAY": "1"}
        storescp_port, listener_port = free_port(), free_port()
        (work / "storescp").mkdir()
        servers.enter_context(serving([STORESCP, "-aet", "STORESCP", "-od", str(work / "storescp"),
                                       str(storescp_port)], storescp_port, env, work / "storescp.log"))
        broker = servers.enter_context(EmbeddedBroker(work / "broker", free_port(), DEBIAN_REDIS))
        listener_env = {**env, "TUMORSEARCH_HOME": str(work / "home"), "TUMORSEARCH_BROKER__URL": broker.url,
                        "TUMORSEARCH_LISTENER__PORT": str(listener_port), "TUMORSEARCH_LOG__LEVEL": "WARNING"}
        tumorsearch = str(Path(sys.executable).parent / "tumorsearch")
        servers.enter_context(serving([tumorsearch, "listener"], listener_port, listener_env, work / "listener.log"))
        rates = best_rates({"storescp": (storescp_port, "STORESCP"), "listener": (listener_port, LISTENER_AE)},
                           files, args.repeats)
    storescp, listener = rates["storescp"], rates["listener"]
    figures = {
        "listener_per_s": round(listener, 1), "storescp_per_s": round(storescp, 1),
        "ratio_vs_storescp": round(listener / storescp, 3), "slices": args.slices, "size": args.size,
        "pixel_bytes_per_instance": args.size * args.size * 2, "repeats": args.repeats, "fsync_before_ack": True,
        "machine": machine(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0
