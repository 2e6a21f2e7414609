"""The load of `bench query`: similar-tumour requests over keep-alive HTTP connections, two ways.

- Closed loop (`run_case`): N clients, each sends its next request when the last one is answered. Throughput
  and latency then depend on each other (Little's law: N = rate x latency), so with 16 clients p95 cannot be
  under 25 ms below 640 queries/s; it shows where the system saturates.
- Open loop (`run_open_case`): requests arrive at a fixed mean rate (Poisson arrivals, as independent viewers
  send them) whatever the answers do, and each latency is counted from the moment its request was due, so a
  backlog counts against the system (no coordinated omission). This is the goal's own question: at >= 200
  queries/s, is p95 <= 25 ms?
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import psutil

GOAL_P95_MS = 25.0
GOAL_QPS = 200.0
K = 10
OPEN_LOOP_POOL = 32  # connections of the open-loop sender: enough that the sender is never what waits


@dataclass
class Case:
    name: str
    clients: int
    query: str
    api_key: str | None = None
    rate: float | None = None  # open loop: mean arrivals per second; None: closed loop


class Tally:
    """Latencies, errors and a sample of result counts, shared by the sending threads."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.hits: list[int] = []
        self.expansions: list[int] = []
        self.timed = threading.Event()

    def record(self, status: int, body: bytes, elapsed_ms: float) -> None:
        if not self.timed.is_set():
            return
        if status != 200:
            self.errors.append(f"{status}: {body[:200]!r}")
            return
        self.latencies.append(elapsed_ms)
        if len(self.hits) < 200:  # a sample: the answer carries k results, each passing the filters
            answer = json.loads(body)
            self.hits.append(len(answer["results"]))
            self.expansions.append(answer.get("query_expansion", 0))  # neighbours the ranking really used


class Sender:
    """One keep-alive connection; a failed one is replaced and the failure counted."""

    def __init__(self, port: int, headers: dict[str, str], tally: Tally) -> None:
        self._port, self._headers, self._tally = port, headers, tally
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, path: str, started: float) -> None:
        try:
            self._connection.request("GET", path, headers=self._headers)
            response = self._connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            self._connection.close()
            self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
            if self._tally.timed.is_set():
                self._tally.errors.append(f"{type(error).__name__}: {error}"[:200])
            return
        self._tally.record(response.status, body, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        self._connection.close()


def _paths(ids: list[str], case: Case) -> list[str]:
    rng = np.random.default_rng(case.clients)
    suffix = f"?k={K}" + (f"&{case.query}" if case.query else "")
    return [f"/api/v1/tumors/{ids[int(i)]}/similar{suffix}" for i in rng.integers(0, len(ids), 2000)]


def _headers(case: Case) -> dict[str, str]:
    return {"Accept": "application/json", **({"X-API-Key": case.api_key} if case.api_key else {})}


def _closed_client(port: int, case: Case, paths: list[str], stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sender = Sender(port, _headers(case), tally)
    try:
        while not stop.is_set():
            sender.send(paths[int(rng.integers(0, len(paths)))], time.perf_counter())
    finally:
        sender.close()


def run_case(port: int, ids: list[str], case: Case, duration_s: float, warmup_s: float) -> dict:
    """Closed loop: `case.clients` clients back to back for warmup_s untimed, then duration_s timed."""
    paths, tally, stop = _paths(ids, case), Tally(), threading.Event()
    threads = [threading.Thread(target=_closed_client, args=(port, case, paths, stop, tally, n), daemon=True)
               for n in range(case.clients)]
    for thread in threads:
        thread.start()
    figures = _timed(tally, duration_s, warmup_s, case)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return figures


def _open_sender(port: int, case: Case, jobs: queue.SimpleQueue, tally: Tally) -> None:
    sender = Sender(port, _headers(case), tally)
    try:
        while (job := jobs.get()) is not None:
            due, path = job
            sender.send(path, due)  # latency from when the request was due, not from when a sender was free
    finally:
        sender.close()


def _arrivals(case: Case, paths: list[str], jobs: queue.SimpleQueue, stop: threading.Event) -> None:
    rng = np.random.default_rng(case.clients + 1)
    due = time.perf_counter()
    while not stop.is_set():
        due += float(rng.exponential(1.0 / case.rate))
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        jobs.put((due, paths[int(rng.integers(0, len(paths)))]))


def run_open_case(port: int, ids: list[str], case: Case, duration_s: float, warmup_s: float) -> dict:
    """Open loop: requests due at `case.rate` per second on average (Poisson), sent by a pool of connections."""
    paths, tally, stop, jobs = _paths(ids, case), Tally(), threading.Event(), queue.SimpleQueue()
    senders = [threading.Thread(target=_open_sender, args=(port, case, jobs, tally), daemon=True)
               for _ in range(case.clients)]
    for thread in senders + [threading.Thread(target=_arrivals, args=(case, paths, jobs, stop), daemon=True)]:
        thread.start()
    figures = _timed(tally, duration_s, warmup_s, case)
    stop.set()
    for _ in senders:
        jobs.put(None)
    for thread in senders:
        thread.join(timeout=30)
    figures["offered_rate_per_s"] = case.rate
    return figures


def _timed(tally: Tally, duration_s: float, warmup_s: float, case: Case) -> dict:
    time.sleep(warmup_s)
    cpu_before = psutil.cpu_times()
    tally.timed.set()
    started = time.perf_counter()
    time.sleep(duration_s)
    tally.timed.clear()
    elapsed = time.perf_counter() - started
    cpu_after = psutil.cpu_times()
    busy = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("user", "system", "nice", "irq", "softirq"))
    return _figures(case, tally, elapsed, busy / (elapsed * (os.cpu_count() or 1)))


def _figures(case: Case, tally: Tally, elapsed: float, cpu_busy: float) -> dict:
    done = len(tally.latencies)
    figures = {"name": case.name, "load": "open" if case.rate else "closed", "clients": case.clients,
               "filters": case.query or None, "auth": "api-key" if case.api_key else "disabled", "requests": done,
               "errors": len(tally.errors), "first_errors": tally.errors[:3], "seconds": round(elapsed, 2),
               "qps": round(done / elapsed, 1),
               "mean_results": round(float(np.mean(tally.hits)), 2) if tally.hits else 0.0,
               "mean_query_expansion": round(float(np.mean(tally.expansions)), 2) if tally.expansions else 0.0,
               "machine_cpu_busy": round(cpu_busy, 2)}
    if done:
        p50, p95, p99 = np.percentile(tally.latencies, [50, 95, 99])
        figures.update(p50_ms=round(float(p50), 2), p95_ms=round(float(p95), 2), p99_ms=round(float(p99), 2),
                       max_ms=round(float(max(tally.latencies)), 2))
    else:
        figures.update(p50_ms=None, p95_ms=None, p99_ms=None, max_ms=None)
    figures["meets_goal"] = bool(done and not tally.errors and figures["p95_ms"] <= GOAL_P95_MS
                                 and figures["qps"] >= GOAL_QPS)
    print(f"  {case.name:36s} {figures['qps']:>8.1f} q/s  p50 {figures['p50_ms']} ms  p95 {figures['p95_ms']} ms"
          f"  errors {len(tally.errors)}", flush=True, file=sys.stderr)
    return figures
