"""`tumorsearch bench <what>`: measurements whose figures go to docs/ (each accepts --json PATH)."""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "vectorstore": ("services.bench.vectorstore", "embedded vector store engines at scale: upsert, filtered query, SIGKILL"),
    "broker": ("services.bench.broker", "Celery broker options for one machine: start-up, throughput, redelivery"),
    "listener": ("services.bench.listener", "C-STORE throughput of the listener (fsync per instance) vs dcmtk storescp"),
    "worker": ("services.bench.worker", "hand-over to searchable through a real worker, per stage"),
    "query": ("services.bench.query", "similar-tumour queries through the gateway at 100k points: p50/p95, q/s"),
    "system": ("services.bench.system", "figshare through Orthanc and every service; mAP via the gateway"),
    "model": ("services.bench.model", "the network on this CPU, fp32 vs bf16: slice, volume (2D, 3D), memory"),
}


def command(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: tumorsearch bench {" + ",".join(BENCHES) + "} [--json PATH] ...\n")
        for name, (_, summary) in BENCHES.items():
            print(f"  {name:12s} {summary}")
        return 0
    if argv[0] not in BENCHES:
        print(f"tumorsearch bench: unknown benchmark {argv[0]!r}; expected one of {', '.join(BENCHES)}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHES[argv[0]][0])
    return int(module.command(argv[1:]) or 0)
