"""`tumorsearch bench system`: a real PACS pushes the figshare benchmark through every service, and the
system's answers are scored like the model is offline.

1. `tumorsearch dicomize` the figshare set; start the system as `make run` does (`tumorsearch run`:
   embedded broker and vector store, listener, worker, gateway) and Orthanc as the PACS.
2. Upload every study into Orthanc; Orthanc pushes each one to the listener (C-STORE), one after the
   other, while this bench polls the gateway until each study is processed: push-to-searchable times.
3. Each fold-K study's main tumour queries the main tumours of the other folds through the gateway
   (`fold` filter, `main_only`), relevance = same type: `map_system`, `p10_system`, beside the offline
   `map_auto_box` of `tumorsearch evaluate` on the same checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from tqdm import tqdm

from services.bench.host import machine
from services.bench.listener import serving
from services.bench.orthanc import OrthancPacs
from services.bench.system_measures import (Gateway, main_tumour, mean_ap, offline_rankings, percentile, quote,
                                            system_rankings)
from shared.dicomize.figshare import dicomize_figshare
from shared.broker.embedded import free_port
from shared.config.data import DataSettings
from shared.config.startup import settings_or_exit

FINAL = ("done", "no_tumour", "failed")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tumorsearch bench system", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data folder (default: TUMORSEARCH_DATA_DIR, docs/configuration.md)")
    parser.add_argument("--test-fold", type=int, default=5)
    parser.add_argument("--folds", default="1,2,3,4,5", help="figshare folds to use (the test fold among them)")
    parser.add_argument("--per-fold", type=int, help="only the first N images of each fold (the CI run)")
    parser.add_argument("--work", type=Path, help="keep the run's files here (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def system_env(home: Path, ports: dict[str, int]) -> dict[str, str]:
    return {**os.environ, "TUMORSEARCH_HOME": str(home), "TUMORSEARCH_LOG__LEVEL": "WARNING",
            "TUMORSEARCH_LISTENER__PORT": str(ports["listener"]), "TUMORSEARCH_GATEWAY__PORT": str(ports["gateway"]),
            "TUMORSEARCH_VECTORHOST__PORT": str(ports["vectors"]), "TUMORSEARCH_RUN__BROKER_PORT": str(ports["broker"]),
            # A local run on loopback; the whole database must fit one ranking (k = its size).
            "TUMORSEARCH_GATEWAY__AUTH_DISABLED": "true", "TUMORSEARCH_GATEWAY__MAX_K": "10000",
            "TUMORSEARCH_GATEWAY__RATE_LIMIT_PER_MINUTE": "1000000",
            # The offline protocol keeps any automatic box, however small: so does the system here.
            "TUMORSEARCH_WORKER__MIN_TUMOR_AREA_MM2": "0"}


def command(argv: list[str]) -> int:
    args = parse(argv)
    args.data = args.data or settings_or_exit(DataSettings, os.environ, "bench system").root
    with ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tumorsearch-bench-system-")))
        figshare = args.data / "figshare-cetumor"
        for fold in (int(f) for f in args.folds.split(",")):
            dicomize_figshare(figshare, work / "dicom", folds={fold}, limit=args.per_fold)
        rows = _mapping(work / "dicom")
        # Every port chosen here, the broker's too, and Orthanc bound before `run` starts: no server of the
        # bench can pick a port another one was promised (a 2026-12-06 CI run met Orthanc's HTTP port taken).
        ports = {name: free_port() for name in ("listener", "gateway", "vectors", "broker", "pacs_http", "pacs_dicom")}
        pacs = _started_pacs(stack, work, ports)
        gateway = Gateway(f"http://127.0.0.1:{ports['gateway']}")
        tumorsearch = str(Path(sys.executable).parent / "tumorsearch")
        stack.enter_context(serving([tumorsearch, "run"], None, system_env(work / "home", ports), work / "run.log",
                                    ready=lambda: _ready(gateway, ports["listener"]), timeout_s=180))
        figures = ingest(pacs, gateway, rows, work / "dicom")
        figures.update(retrieval(gateway, rows, args.test_fold, figshare))
    figures["machine"] = machine()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _started_pacs(stack: ExitStack, work: Path, ports: dict[str, int], attempts: int = 3) -> OrthancPacs:
    """Orthanc up on its ports (stopped with `stack`); fresh ports when another program took them between
    choosing and binding."""
    for attempt in range(1, attempts + 1):
        pacs = OrthancPacs(work / f"pacs-{attempt}", ports["pacs_http"], ports["pacs_dicom"],
                           ("TUMORSEARCH", ports["listener"]))
        try:
            return stack.enter_context(pacs)
        except RuntimeError:  # OrthancPacs stopped its process
            if attempt == attempts:
                raise
            ports.update(pacs_http=free_port(), pacs_dicom=free_port())
    raise AssertionError("unreachable")


def _ready(gateway: Gateway, listener_port: int) -> bool:
    """`run` starts the listener last: the system is up when it accepts connections and the gateway is ready."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", listener_port), timeout=1).close()
        return gateway.get("/readyz", timeout=2)[0] == 200
    except OSError:
        return False


def _mapping(folder: Path) -> list[dict[str, str]]:
    import csv

    with (folder / "mapping.csv").open() as handle:
        return list(csv.DictReader(handle))


def ingest(pacs: OrthancPacs, gateway: Gateway, rows: list[dict[str, str]], dicom: Path) -> dict:
    orthanc_ids = {row["study_instance_uid"]: pacs.upload(dicom / row["folder"] / "slice0000.dcm")
                   for row in tqdm(rows, desc="upload to the PACS", unit="study")}
    pushed: dict[str, float] = {}
    started = time.perf_counter()
    failures: list[BaseException] = []
    pusher = threading.Thread(target=_push_all, args=(pacs, orthanc_ids, pushed, failures), daemon=True)
    pusher.start()
    searchable, states = _wait_all(gateway, pushed, len(rows), failures)
    pusher.join()
    elapsed = time.perf_counter() - started
    delays = [searchable[uid] - pushed[uid] for uid in searchable]
    return {"studies": len(rows), "studies_per_s": round(len(rows) / elapsed, 3), "ingest_s": round(elapsed, 1),
            "push_to_searchable_p50_s": percentile(delays, 50), "push_to_searchable_p95_s": percentile(delays, 95),
            "no_tumour_studies": sum(s == "no_tumour" for s in states.values()),
            "failed_studies": sum(s == "failed" for s in states.values()),
            "query_p50_ms_during_ingest": percentile(gateway.latencies_ms, 50),
            "query_p95_ms_during_ingest": percentile(gateway.latencies_ms, 95)}


def _push_all(pacs: OrthancPacs, orthanc_ids: dict[str, str], pushed: dict[str, float],
              failures: list[BaseException]) -> None:
    try:
        for study_uid, orthanc_id in orthanc_ids.items():
            pacs.push(orthanc_id)
            pushed[study_uid] = time.perf_counter()
    except Exception as error:  # noqa: BLE001 - handed to the waiting thread, which stops the bench
        failures.append(error)


def _wait_all(gateway: Gateway, pushed: dict[str, float], total: int, failures: list[BaseException],
              stalled_s: float = 300.0) -> tuple[dict[str, float], dict[str, str]]:
    searchable: dict[str, float] = {}
    states: dict[str, str] = {}
    last_progress = time.perf_counter()
    with tqdm(total=total, desc="pushed and processed", unit="study") as bar:
        while len(searchable) < total:
            if failures:
                raise RuntimeError(f"expected the PACS to push every study, found: {failures[0]}")
            if time.perf_counter() - last_progress > stalled_s:
                raise RuntimeError(f"expected progress within {stalled_s:g} s; {len(searchable)} of {total} done")
            before = len(searchable)
            for study_uid in [u for u in list(pushed) if u not in searchable]:
                status, body = gateway.get(f"/api/v1/studies/{quote(study_uid)}")
                if status == 200 and body["state"] in FINAL:
                    searchable[study_uid], states[study_uid] = time.perf_counter(), body["state"]
                    bar.update(1)
            if len(searchable) > before:
                last_progress = time.perf_counter()
            time.sleep(0.2)
    return searchable, states


def retrieval(gateway: Gateway, rows: list[dict[str, str]], test_fold: int, figshare: Path) -> dict:
    gateway.latencies_ms.clear()
    by_uid = {row["study_instance_uid"]: row for row in rows}
    queries, database = {}, {}
    for row in rows:
        _, study = gateway.get(f"/api/v1/studies/{quote(row['study_instance_uid'])}")
        if int(row["fold"]) == test_fold:
            queries[row["study_instance_uid"]] = main_tumour(study)
        elif main_tumour(study) is not None:
            database[row["study_instance_uid"]] = row["label"]
    folds = sorted({int(r["fold"]) for r in rows} - {test_fold})
    system, expansions = system_rankings(gateway, queries, folds, len(database) + 1)
    if len(expansions) > 1:
        raise RuntimeError(f"expected one query expansion for every query, found {sorted(expansions)}")
    expansion = next(iter(expansions), 0)
    query_type = {uid: by_uid[uid]["label"] for uid in queries}
    map_system, p10_system = mean_ap(system, query_type, database)
    ids = {uid: int(row["image_id"]) for uid, row in by_uid.items()}
    offline, version = offline_rankings(figshare, [ids[u] for u in queries],
                                        [ids[u] for u, r in by_uid.items() if int(r["fold"]) != test_fold],
                                        expansion)
    uid_of = {image: uid for uid, image in ids.items()}
    offline_by_uid = {uid_of[q]: (None if r is None else [uid_of[i] for i in r]) for q, r in offline.items()}
    offline_database = {uid_of[i]: by_uid[uid_of[i]]["label"] for r in offline.values() if r for i in r}
    map_offline, p10_offline = mean_ap(offline_by_uid, query_type, offline_database)
    equal = sum(system[u] == offline_by_uid[u] for u in queries)
    return {"test_fold": test_fold, "queries": len(queries), "database": len(database),
            "map_system": map_system, "p10_system": p10_system, "map_offline": map_offline, "p10_offline": p10_offline,
            "map_difference": round(map_system - map_offline, 4), "rankings_equal": equal,
            "offline_database": len(offline_database), "model_version": version,
            "query_expansion": expansion,
            "query_p50_ms": percentile(gateway.latencies_ms, 50), "query_p95_ms": percentile(gateway.latencies_ms, 95)}
