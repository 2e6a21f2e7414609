"""`tumorsearch bench model`: how fast the network runs on this CPU, fp32 against bf16.

Each timing is the median of --repeats runs after two warm-up runs (volumes: --volume-repeats after one):
  * preprocess: a 256x256 slice resampled to the model grid (area averaging) and normalised;
  * slice_2d: the network (features + mask + one box's embedding) at batch 1 and at --batch (per slice);
  * volume_2d: a BraTS-like volume (155x240x240 at 1 mm) slice by slice with the 2D model: slices
    resampled in plane to the model's spacing, run in batches of --batch, feature maps and masks stacked;
  * volume_3d: the same volume resampled to an isotropic --spacing-3d (2 mm: 78x120x120, padded to the
    model's input multiple: 80x128x128 for the shipped head) through a 3D PisovNet with the 2D model's
    architecture (random weights);
  * agreement: fp32 against bf16 outputs on one input, so a speed-up is not bought with a broken model.
Every configuration runs in a fresh process; its peak memory is the peak RSS minus the RSS after imports.
bf16 is CPU autocast to bfloat16 with channels_last (channels_last_3d in 3D): the worker's arithmetic on a CPU
that computes bf16 natively; elsewhere it runs fp32 (`machine.auto_precision`, shared/model/device.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch
from tqdm import tqdm

from shared.model.device import cpu_has_native_bf16, precision_name
from shared.model.network import PisovNet
from services.bench.host import machine
from services.bench.model_measures import MEASURES

PRECISIONS = ("fp32", "bf16")
CONFIGS = ("preprocess", *(f"{kind}-{p}" for kind in ("slice_2d", "volume_2d", "volume_3d") for p in PRECISIONS),
           "agreement")
_CHILD = "import sys; from services.bench.model import child; child(sys.argv[1])"


def command(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    shape = _shape(args.volume_shape)
    if unknown or not configs or shape is None:
        print(f"bench model: --configs expected a comma-separated subset of {','.join(CONFIGS)} and "
              f"--volume-shape DxHxW, found {args.configs!r} and {args.volume_shape!r}", file=sys.stderr)
        return 2
    params = {"repeats": args.repeats, "volume_repeats": args.volume_repeats, "batch": args.batch,
              "threads": args.threads, "slice_size": args.slice_size, "volume_shape": shape,
              "source_spacing_mm": args.source_spacing, "spacing_3d_mm": args.spacing_3d,
              "config_timeout_s": args.config_timeout}
    load_start = os.getloadavg()
    results = {}
    with tqdm(configs, desc="bench model", unit="config", file=sys.stderr) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            results[name] = _run_child(name, params)
    report = {"benchmark": "model", "command": "tumorsearch bench model " + " ".join(argv),
              "machine": _machine(results), "code": _code(), "params": params,
              "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
              **_summary(results), "configs": results}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_table(report)
    return 1 if any("error" in r for r in results.values()) else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch bench model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20, help="timed runs per slice figure (default 20)")
    p.add_argument("--volume-repeats", type=int, default=3, help="timed runs per volume figure (default 3)")
    p.add_argument("--batch", type=int, default=16, help="slices per batch: the batched figure and volumes")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's own choice)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {','.join(CONFIGS)}")
    p.add_argument("--slice-size", type=int, default=256, help="source slice side in pixels (default 256)")
    p.add_argument("--volume-shape", default="155x240x240", help="source volume DxHxW (default 155x240x240)")
    p.add_argument("--source-spacing", type=float, default=1.0, help="source volume spacing, mm (default 1)")
    p.add_argument("--spacing-3d", type=float, default=2.0, help="isotropic spacing of the 3D path, mm (default 2)")
    p.add_argument("--config-timeout", type=float, default=900,
                   help="seconds one configuration may take before it is stopped and reported as failed "
                        "(default 900; bf16 on a CPU without native bf16 can take far longer)")
    p.add_argument("--json", help="write the figures to this file")
    return p


def _shape(text: str) -> list[int] | None:
    parts = text.lower().split("x")
    shape = [int(n) for n in parts] if all(n.isdigit() for n in parts) else []
    return shape if len(shape) == 3 and min(shape) >= 4 else None


def _run_child(name: str, params: dict) -> dict:
    """One configuration in a fresh interpreter: its peak RSS is its own, not the previous one's. One that
    outlasts the timeout is killed and reported, so a CPU that only emulates bf16 still gets a report."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps({"config": name, **params})],
                              stdout=subprocess.PIPE, text=True, check=False, timeout=params["config_timeout_s"])
    except subprocess.TimeoutExpired:
        return {"error": f"expected to finish within --config-timeout {params['config_timeout_s']:g} s, "
                         f"found it still running; stopped"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"expected exit 0 and a JSON line, found exit {done.returncode} (traceback on stderr)"}
    return json.loads(lines[-1])


def child(params_json: str) -> None:
    params = json.loads(params_json)
    if params["threads"]:
        torch.set_num_threads(params["threads"])
    baseline = psutil.Process().memory_info().rss
    load_start, start = os.getloadavg(), time.perf_counter()
    kind, _, precision = params["config"].partition("-")
    with torch.inference_mode():
        figures = MEASURES[kind](params, precision == "bf16")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"figures": figures, "peak_rss_mb": round((peak - baseline) / 2**20, 1),
                      "baseline_rss_mb": round(baseline / 2**20, 1), "threads": torch.get_num_threads(),
                      "wall_s": round(time.perf_counter() - start, 2),
                      "load_average": {"start": list(load_start), "end": list(os.getloadavg())}}))


SUMMARY_KEYS = {"slice_2d": "slice_2d_ms", "volume_2d": "volume_2d_slicewise_s", "volume_3d": "volume_3d_s"}


def _summary(results: dict) -> dict:
    """The medians by figure and precision, the peak memory by configuration, and bf16's agreement."""
    ok = {name: r for name, r in results.items() if "error" not in r}
    out = {"preprocess_2d_ms": ok["preprocess"]["figures"]["timings"]["slice_ms"]["median"]
           if "preprocess" in ok else None}
    for kind, key in SUMMARY_KEYS.items():
        out[key] = {p: {t: v["median"] for t, v in ok[f"{kind}-{p}"]["figures"]["timings"].items()}
                    for p in PRECISIONS if f"{kind}-{p}" in ok}
    out["bf16_speedup"] = {f"{key}.{t}": round(v["fp32"][t] / v["bf16"][t], 2) for key, v in
                           ((k, out[k]) for k in SUMMARY_KEYS.values()) if set(v) == set(PRECISIONS)
                           for t in v["fp32"]}
    out["peak_rss_mb"] = {name: r["peak_rss_mb"] for name, r in ok.items()}
    out["bf16_agreement"] = ok["agreement"]["figures"] if "agreement" in ok else None
    out["failed_configs"] = {name: r["error"] for name, r in results.items() if "error" in r}
    return out


def _code() -> dict:
    """Which network was timed: the architecture changes between commits, and the tree may be dirty."""
    root, network = Path(__file__).resolve().parents[2], Path(sys.modules[PisovNet.__module__].__file__)
    git = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", str(network)],
                           capture_output=True, text=True, check=False)
    return {"git_head": git.stdout.strip() or None, "network_py_modified": bool(dirty.stdout.strip()),
            "network_py_sha256": hashlib.sha256(network.read_bytes()).hexdigest()[:16]}


def _machine(results: dict) -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), [])
    threads = {r["threads"] for r in results.values() if "threads" in r}
    return machine() | {"torch": torch.__version__,
                        "threads": sorted(threads) if len(threads) > 1 else next(iter(threads), None),
                        "bf16_cpu_flags": [f for f in flags if "bf16" in f or f.startswith("amx")],
                        "native_bf16": cpu_has_native_bf16(),
                        "auto_precision": precision_name(torch.device("cpu"))}


def _print_table(report: dict) -> None:
    print(f"{'median':44s} {'fp32':>9s} {'bf16':>9s}")
    for key in SUMMARY_KEYS.values():
        for t in next(iter(report[key].values()), {}):
            cells = [report[key].get(p, {}).get(t) for p in PRECISIONS]
            print(f"{key + '.' + t:44s} " + " ".join(f"{c:>9.4g}" if c is not None else f"{'-':>9s}" for c in cells))
    for key in ("preprocess_2d_ms", "peak_rss_mb", "bf16_agreement", "failed_configs"):
        print(f"{key}: {json.dumps(report[key])}")
