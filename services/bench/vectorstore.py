"""`tumorsearch bench vectorstore`: the embedded engines through the facade, at scale.

For each engine: upsert rate (batches of 1000 points with a payload shaped like the real one), latency of
a filtered top-10 exact search, reopening, and crash safety (a child process upserting is SIGKILLed
mid-batch; every batch it acknowledged must be found on reopening).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from services.bench.host import machine
from shared.vectorstore import CollectionSpec, EdgeStore, Filter, Match, PointRecord, QdrantStore, VectorStore

ENGINES = ("edge", "qdrant-local")
BATCH = 1000
COLLECTION = "tumors__bench"
TYPES = ("glioma", "meningioma", "pituitary")
_NAMESPACE = uuid.UUID("3d0f6f52-5c1e-4c55-8f0e-2b7f6a1d9e11")
_CHILD = "import sys; from services.bench.vectorstore import crash_child; crash_child(*sys.argv[1:])"


def command(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        print(f"bench vectorstore: --engines expected a comma-separated subset of {','.join(ENGINES)}, "
              f"found {args.engines!r}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-vectorstore-", dir=args.workdir) as work:
        report = {"benchmark": "vectorstore", "command": "tumorsearch bench vectorstore " + " ".join(argv),
                  "machine": _machine(), "params": {"points": args.points, "dim": args.dim, "queries": args.queries,
                                                    "batch": BATCH, "cap_s": args.cap_s,
                                                    "crash_after_batches": args.crash_after,
                                                    "crash_trials": args.crash_trials},
                  "engines": {e: _bench_engine(e, Path(work) / e, args) for e in engines}}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_table(report)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch bench vectorstore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=100_000, help="points to upsert per engine (default 100000)")
    p.add_argument("--dim", type=int, default=64, help="vector size (default 64, the paper's embedding)")
    p.add_argument("--queries", type=int, default=200, help="filtered top-10 searches to time (default 200)")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--workdir", help="folder for the stores (default: a temporary folder, removed at the end)")
    p.add_argument("--cap-s", type=float, default=600.0,
                   help="stop an engine's upsert phase after this many seconds and report the points reached "
                        "(qdrant-client local mode needs ~400 s for 100k; default 600)")
    p.add_argument("--crash-after", type=int, default=5,
                   help="acknowledged batches before the first crash trial's SIGKILL (default 5)")
    p.add_argument("--crash-trials", type=int, default=3, choices=(0, 1, 2, 3),
                   help="crash trials per engine, killed at 1/4, 1/2, 3/4 of a batch (default 3; 0 skips them)")
    return p


def open_store(engine: str, path: Path) -> VectorStore:
    return EdgeStore(path) if engine == "edge" else QdrantStore.local(str(path))


def spec(dim: int) -> CollectionSpec:
    return CollectionSpec(COLLECTION, "roi", dim, "Cosine",
                          indexes={"tumor_type": "keyword", "fold": "integer", "size_mm3": "float"})


def point_ids(start: int, n: int) -> list[str]:
    return [str(uuid.uuid5(_NAMESPACE, str(i))) for i in range(start, start + n)]


def batch(start: int, n: int, dim: int) -> list[PointRecord]:
    """Points start..start+n-1, the same on every run: the crash check recomputes the acknowledged ids."""
    rng = np.random.default_rng(start)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    sizes = rng.uniform(50.0, 60_000.0, n)
    return [PointRecord(pid, vectors[k], {"tumor_type": TYPES[(start + k) % 3], "size_mm3": float(sizes[k]),
                                          "fold": (start + k) % 5 + 1})
            for k, pid in enumerate(point_ids(start, n))]


def _bench_engine(engine: str, folder: Path, args: argparse.Namespace) -> dict:
    print(f"== {engine}", file=sys.stderr, flush=True)
    store = open_store(engine, folder / "store")
    try:
        upsert = _upsert_phase(store, engine, args)
        query = _query_phase(store, engine, args)
    finally:
        store.close()
    return {"upsert": upsert, "query": query, "reopen": _reopen_phase(engine, folder / "store", upsert["points"]),
            "crash": _crash_trials(engine, folder, args)}


def _crash_trials(engine: str, folder: Path, args: argparse.Namespace) -> dict:
    """Kills at a quarter, a half and three quarters of a batch: a torn write may show at one and not another."""
    trials = [crash_test(engine, folder / f"crash-{k}", args.dim, args.crash_after + k, fraction)
              for k, fraction in enumerate((0.25, 0.5, 0.75)[:args.crash_trials])]
    return {"trials": trials, "acknowledged": sum(t["acknowledged"] for t in trials),
            "found": sum(t["found"] for t in trials), "opened": all(t["opened"] for t in trials),
            "all_acknowledged_found": all(t["all_acknowledged_found"] for t in trials),
            "torn_batches": sum(t.get("count_after", 0) % BATCH != 0 for t in trials), "skipped": not trials}


def _upsert_phase(store: VectorStore, engine: str, args: argparse.Namespace) -> dict:
    store.ensure_collection(spec(args.dim))
    done, elapsed = 0, 0.0
    with tqdm(total=args.points, desc=f"{engine} upsert", unit="pt", mininterval=2, file=sys.stderr) as bar:
        while done < args.points and elapsed < args.cap_s:
            n = min(BATCH, args.points - done)
            points = batch(done, n, args.dim)  # made off the clock: the figure is the store's, not numpy's
            started = time.perf_counter()
            store.upsert(COLLECTION, points)
            elapsed += time.perf_counter() - started
            done += n
            bar.update(n)
    return {"points": done, "seconds": round(elapsed, 3), "points_per_s": round(done / elapsed, 1),
            "capped": done < args.points, "asked": args.points}


def _query_phase(store: VectorStore, engine: str, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(12345)
    latencies, hits = [], []
    for q in tqdm(range(args.queries), desc=f"{engine} query", mininterval=2, file=sys.stderr):
        # tumour type == X and fold != 5: the gateway's "same type, not the held-out fold" shape of question
        flt = Filter(must=(Match("tumor_type", TYPES[q % 3]),), must_not=(Match("fold", 5),))
        vector = rng.standard_normal(args.dim, dtype=np.float32)
        started = time.perf_counter()
        result = store.search(COLLECTION, vector, 10, flt)
        latencies.append((time.perf_counter() - started) * 1000)
        ok = all(h.payload["tumor_type"] == TYPES[q % 3] and h.payload["fold"] != 5 for h in result)
        hits.append(len(result) if ok else -1)
    return {"n": args.queries, "p50_ms": round(float(np.percentile(latencies, 50)), 3),
            "p95_ms": round(float(np.percentile(latencies, 95)), 3), "mean_ms": round(float(np.mean(latencies)), 3),
            "all_hits_pass_filter": min(hits, default=0) >= 0, "mean_hits": round(float(np.mean(hits)), 2)}


def _reopen_phase(engine: str, path: Path, points: int) -> dict:
    started = time.perf_counter()
    store = open_store(engine, path)
    try:
        count = store.count(COLLECTION)
        seconds = time.perf_counter() - started  # opening is lazy in some engines: the first answer counts
    finally:
        store.close()
    return {"seconds": round(seconds, 3), "count": count, "all_points_back": count == points}


def crash_child(engine: str, path: str, dim: str, batches: str) -> None:
    """Runs in the child: upsert batches, say "ack <i>" after each one the store acknowledged."""
    store = open_store(engine, Path(path))
    store.ensure_collection(spec(int(dim)))
    print("ready", flush=True)
    for i in range(int(batches)):
        store.upsert(COLLECTION, batch(i * BATCH, BATCH, int(dim)))
        print(f"ack {i}", flush=True)
    store.close()


def crash_test(engine: str, folder: Path, dim: int, crash_after: int, fraction: float = 0.5) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "child-stderr.log"
    with open(log, "wb") as err:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, engine, str(folder / "store"), str(dim),
                                  str(crash_after + 1000)], stdout=subprocess.PIPE, stderr=err, text=True,
                                 cwd=Path(__file__).resolve().parents[2])
        acked, killed_mid_run = _kill_mid_batch(child, crash_after, fraction)
    result = {"kill_at_batch_fraction": fraction, "acknowledged_batches": acked, "acknowledged": acked * BATCH,
              "killed_mid_run": killed_mid_run, "child_exit": child.returncode, "child_stderr": log.read_text(errors="replace")[-2000:]}
    try:
        store = open_store(engine, folder / "store")
    except Exception as exc:  # the point of the test: report, do not crash the benchmark
        return {**result, "opened": False, "error": f"{type(exc).__name__}: {exc}", "found": 0,
                "all_acknowledged_found": False}
    try:
        found = sum(len(store.retrieve(COLLECTION, point_ids(i * BATCH, BATCH))) for i in range(acked))
        total = store.count(COLLECTION) if store.collection_exists(COLLECTION) else 0
        error = None
    except Exception as exc:
        found, total, error = 0, 0, f"{type(exc).__name__}: {exc}"
    finally:
        store.close()
    return {**result, "opened": True, "error": error, "found": found, "count_after": total,
            "all_acknowledged_found": error is None and found == acked * BATCH}


def _kill_mid_batch(child: subprocess.Popen, crash_after: int, fraction: float) -> tuple[int, bool]:
    """SIGKILL `fraction` of the way through the batch after `crash_after` acknowledged ones (judged by the
    mean time of the batches so far); count every ack printed, including those still in the pipe."""
    acked, stamps = 0, []
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("ack"):
            acked += 1
            stamps.append(time.perf_counter())
        elif line.startswith("ready"):
            stamps.append(time.perf_counter())
        if acked >= crash_after:
            time.sleep(float(np.mean(np.diff(stamps))) * fraction if len(stamps) > 1 else 0.0)
            break
    killed_mid_run = child.poll() is None
    if killed_mid_run:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    acked += sum(1 for line in child.stdout if line.startswith("ack"))  # acks printed before the kill landed
    return acked, killed_mid_run


def _machine() -> dict:
    return machine() | {"qdrant_edge_py": metadata.version("qdrant-edge-py"),
                        "qdrant_client": metadata.version("qdrant-client")}


def _print_table(report: dict) -> None:
    print(f"{'engine':14s} {'points':>8s} {'upsert pt/s':>12s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'reopen s':>9s} {'crash: acked/found, opened':>28s}")
    for name, r in report["engines"].items():
        u, q, o, c = r["upsert"], r["query"], r["reopen"], r["crash"]
        capped = " (capped)" if u["capped"] else ""
        print(f"{name:14s} {u['points']:>8d} {u['points_per_s']:>12.0f} {q['p50_ms']:>8.2f} {q['p95_ms']:>8.2f} "
              f"{o['seconds']:>9.2f} {c['acknowledged']:>12d}/{c['found']:<6d} {str(c['opened']):>8s}{capped}")
