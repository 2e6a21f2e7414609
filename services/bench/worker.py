"""`tumorsearch bench worker`: seconds from hand-over to searchable, per study, through a real worker.

Starts what `make run` starts for the worker's side (the embedded broker, the vector store host, one
`tumorsearch worker`), places two studies where the listener would have stored them — one figshare
slice and the 155-slice 240x240 BraTS metastasis volume, both written as DICOM by shared/dicomize —
hands each over by task name and waits for its status. Each study is handed over `--repeats` times
(the worker is idempotent); the best run is reported, with the worker's own time per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image

from services.bench.host import machine
from services.bench.listener import serving
from services.bench.worker_study import hand_over_and_wait, place_study
from shared.broker.embedded import DEBIAN_REDIS, EmbeddedBroker, free_port
from shared.config.data import DataSettings
from shared.config.startup import settings_or_exit
from shared.dicomize.writer import StudyIds, affine_lps_from_file, write_slice_study, write_volume_series

SLICE_IMAGE = 1873  # a fold-5 glioma
VOLUME = "volumes/brats-met-00110/t1c.nii.gz"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tumorsearch bench worker", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data folder (default: TUMORSEARCH_DATA_DIR, docs/configuration.md)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def write_studies(data: Path, out: Path) -> dict[str, list[Path]]:
    image = np.asarray(Image.open(data / "figshare-cetumor" / "images" / f"{SLICE_IMAGE}.png").convert("L"))
    volume, affine = affine_lps_from_file(data / VOLUME)
    return {"single_slice": write_slice_study(image.astype(np.uint16), 0.98, out / "slice", StudyIds.fresh("BENCH-1")),
            "volume": write_volume_series(volume, affine, out / "volume", StudyIds.fresh("BENCH-2"))}


def command(argv: list[str]) -> int:
    args = parse(argv)
    args.data = args.data or settings_or_exit(DataSettings, os.environ, "bench worker").root
    with tempfile.TemporaryDirectory(prefix="tumorsearch-bench-worker-") as work_dir, ExitStack() as stack:
        work = Path(work_dir)
        studies = write_studies(args.data, work / "dicom")
        broker = stack.enter_context(EmbeddedBroker(work / "broker", free_port(), DEBIAN_REDIS))
        port = free_port()
        env = {**os.environ, "TUMORSEARCH_HOME": str(work / "home"), "TUMORSEARCH_BROKER__URL": broker.url,
               "TUMORSEARCH_VECTORHOST__PORT": str(port), "TUMORSEARCH_VECTOR_STORE__URL": f"http://127.0.0.1:{port}",
               "TUMORSEARCH_LOG__LEVEL": "WARNING"}
        tumorsearch = str(Path(sys.executable).parent / "tumorsearch")
        stack.enter_context(serving([tumorsearch, "vectorstore"], port, env, work / "vectorstore.log"))
        # INFO: the worker says "ready." in its log, the only sign of readiness a worker gives.
        log = work / "worker.log"
        stack.enter_context(serving([tumorsearch, "worker"], None, {**env, "TUMORSEARCH_LOG__LEVEL": "INFO"}, log,
                                    ready=lambda: log.exists() and " ready." in log.read_text(errors="replace"),
                                    timeout_s=120))
        figures = {}
        for name, files in studies.items():
            study_uid = place_study(work / "home", files)
            runs = [hand_over_and_wait(broker.url, work / "home", study_uid, n + 1, f"http://127.0.0.1:{port}")
                    for n in range(args.repeats)]
            best = min(runs, key=lambda r: r["searchable_s"])
            figures[f"{name}_total_s"] = best["searchable_s"]
            figures[name] = {**best, "slices": len(files), "runs_searchable_s": [r["searchable_s"] for r in runs]}
    figures["goal_volume_total_s"] = 15.0
    figures["machine"] = machine()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0
