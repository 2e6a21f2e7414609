"""`tumorsearch bench model`: how fast the network runs on this CPU, fp32 against bf16.

Each timing is the median of --repeats runs after two warm-up runs (volumes: --volume-repeats after one):
  * preprocess: a 256x256 slice resampled to the model grid (area averaging) and normalised;
  * slice_2d: the network (features + mask + one box's embedding) at batch 1 and at --batch (per slice);
  * volume_2d: a BraTS-like volume (155x240x240 at 1 mm) slice by slice with the 2D model: slices
    resampled in plane to the model's spacing, run in batches of --batch, feature maps and masks stacked;
  * volume_3d: the same volume resampled to an isotropic --spacing-3d (2 mm: 78x120x120, padded to
    80x120x120) through a 3D PisovNet with the 2D model's channels and blocks (random weights);
  * agreement: fp32 against bf16 outputs on one input, so a speed-up is not bought with a broken model.
Every configuration runs in a fresh process; its peak memory is the peak RSS minus the RSS after imports.
bf16 is the worker's setting: CPU autocast to bfloat16 with channels_last (channels_last_3d in 3D).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from torch.nn import functional as F
from tqdm import tqdm

from shared.model.checkpoint import SHIPPED, SOURCE_SPACING_MM, build_model, load
from shared.model.config import TrainConfig
from shared.model.device import autocast
from shared.model.network import STRIDE, PisovNet
from shared.model.preprocess import normalize_image, resize_image

PRECISIONS = ("fp32", "bf16")
CONFIGS = ("preprocess", *(f"{kind}-{p}" for kind in ("slice_2d", "volume_2d", "volume_3d") for p in PRECISIONS),
           "agreement")
WARMUP = 2         # a slice's warm-up runs: oneDNN builds its kernels for a shape on the first call
VOLUME_WARMUP = 1  # a volume's run is seconds long; one warm-up builds the kernels
AGREEMENT_3D_SHAPE = (32, 64, 64)
CPU = torch.device("cpu")
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
              "source_spacing_mm": args.source_spacing, "spacing_3d_mm": args.spacing_3d}
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
    p.add_argument("--json", help="write the figures to this file")
    return p


def _shape(text: str) -> list[int] | None:
    parts = text.lower().split("x")
    shape = [int(n) for n in parts] if all(n.isdigit() for n in parts) else []
    return shape if len(shape) == 3 and min(shape) >= 4 else None


def _run_child(name: str, params: dict) -> dict:
    """One configuration in a fresh interpreter: its peak RSS is its own, not the previous one's."""
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps({"config": name, **params})],
                          stdout=subprocess.PIPE, text=True, check=False)
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


def _model_2d() -> tuple[PisovNet, dict]:
    """The shipped checkpoint, or a default model with random weights: the timing is the same."""
    try:
        model, card = load(SHIPPED)
        config, weights = TrainConfig.from_json(card["config"]), str(SHIPPED)
    except FileNotFoundError:
        torch.manual_seed(0)
        config, weights = TrainConfig(), "none: random initial weights (no shipped checkpoint yet)"
        model = build_model(config).eval()
    return model, {"weights": weights, "parameters": sum(p.numel() for p in model.parameters()),
                   "channels": config.channels, "blocks": config.blocks,
                   "input_size": config.size, "spacing_mm": round(SOURCE_SPACING_MM * 256 / config.size, 4)}


def _model_3d(info: dict) -> PisovNet:
    torch.manual_seed(0)
    return PisovNet(dims=3, in_channels=1, channels=info["channels"], blocks=info["blocks"]).eval()


def _formatted(tensor_or_model, bf16: bool, dims: int):
    """channels_last under bf16: oneDNN's fast bf16 convolutions want the channels innermost."""
    if not bf16:
        return tensor_or_model
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    if isinstance(tensor_or_model, torch.Tensor):
        return tensor_or_model.contiguous(memory_format=fmt)
    return tensor_or_model.to(memory_format=fmt)


def _forward(model: PisovNet, x: torch.Tensor, bf16: bool) -> dict[str, torch.Tensor]:
    """Mask logits, embedding and task logits for a box over the image's central half."""
    spatial = torch.tensor(x.shape[2:])
    boxes = torch.cat([spatial // 4, spatial * 3 // 4]).repeat(x.shape[0], 1)
    with autocast(CPU, enabled=bf16):
        return model(x, boxes)


def _timed(fn, repeats: int, scale: float, per: int = 1, warmup: int = WARMUP) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * scale / per)
    return {"median": round(statistics.median(times), 4), "min": round(min(times), 4),
            "max": round(max(times), 4), "runs": len(times)}


def _phantom(shape, seed: int = 0) -> np.ndarray:
    """A head-like ellipsoid (~300) with a bright 'tumour' (~700) and noise: percentiles behave as on MR."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32).reshape([-1 if i == d else 1 for i in range(len(shape))])
            for d, n in enumerate(shape)]
    head = sum(a ** 2 for a in axes) < 0.8
    tumour = sum((a - 0.3) ** 2 for a in axes) < 0.04
    noise = np.random.default_rng(seed).normal(0.0, 20.0, shape).astype(np.float32)
    return np.clip(300.0 * head + 400.0 * tumour + noise, 0, None).astype(np.float32)


def _pad4(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Pad the spatial sides to multiples of the stride with the normalised background (-1)."""
    pads = []
    for n in reversed(x.shape[-dims:]):
        pads += [0, -n % STRIDE]
    return F.pad(x, pads, value=-1.0)


def _resampled(x: torch.Tensor, factor: float) -> torch.Tensor:
    size = [max(STRIDE, round(n * factor)) for n in x.shape[2:]]
    mode = "area" if factor < 1 else ("bilinear" if x.dim() == 4 else "trilinear")
    return F.interpolate(x, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))


def _slices_2d(volume: np.ndarray, factor: float) -> torch.Tensor:
    """In-plane resampling, then per-slice normalisation: each slice reaches the net as a training image."""
    planes = _resampled(torch.from_numpy(volume)[:, None], factor)[:, 0].numpy()
    return _pad4(torch.from_numpy(np.stack([normalize_image(s) for s in planes]))[:, None], 2)


def _volume_3d(volume: np.ndarray, factor: float) -> torch.Tensor:
    grid = _resampled(torch.from_numpy(volume)[None, None], factor)[0, 0].numpy()
    return _pad4(torch.from_numpy(normalize_image(grid))[None, None], 3)


def measure_preprocess(params: dict, _bf16: bool) -> dict:
    _, info = _model_2d()
    image = _phantom((params["slice_size"],) * 2)
    timing = _timed(lambda: normalize_image(resize_image(image, info["input_size"])), params["repeats"], 1e3)
    return {"model": info, "timings": {"slice_ms": timing}}


def measure_slice_2d(params: dict, bf16: bool) -> dict:
    model, info = _model_2d()
    model = _formatted(model, bf16, 2)
    image = normalize_image(resize_image(_phantom((params["slice_size"],) * 2), info["input_size"]))
    timings = {}
    for batch in (1, params["batch"]):
        x = _formatted(torch.from_numpy(image)[None, None].repeat(batch, 1, 1, 1), bf16, 2)
        key = "batch1_ms" if batch == 1 else f"batch{batch}_ms_per_slice"
        timings[key] = _timed(lambda: _forward(model, x, bf16), params["repeats"], 1e3, per=batch)
    return {"model": info, "timings": timings}


def measure_volume_2d(params: dict, bf16: bool) -> dict:
    model, info = _model_2d()
    model = _formatted(model, bf16, 2)
    volume, factor = _phantom(params["volume_shape"]), params["source_spacing_mm"] / info["spacing_mm"]

    def network(x: torch.Tensor) -> torch.Tensor:
        features, masks = [], []
        for start in range(0, len(x), params["batch"]):
            part = _formatted(x[start:start + params["batch"]], bf16, 2)
            with autocast(CPU, enabled=bf16):
                maps = model.features(part)
                masks.append(model.segment(maps).float() > 0)
            features.append(maps[0].float())
        # Stacked along the slices: (C, D, H, W), pooled like a 3D map under the tumour's box.
        stacked = torch.cat(features).transpose(0, 1)
        d, h, w = stacked.shape[1:]
        return stacked[:, d // 4:3 * d // 4, h // 4:3 * h // 4, w // 4:3 * w // 4].amax(dim=(1, 2, 3))

    return {"model": info, **_volume_timings(lambda: _slices_2d(volume, factor), network, params["volume_repeats"])}


def measure_volume_3d(params: dict, bf16: bool) -> dict:
    _, info = _model_2d()
    model = _formatted(_model_3d(info), bf16, 3)
    volume, factor = _phantom(params["volume_shape"]), params["source_spacing_mm"] / params["spacing_3d_mm"]
    return {"model": {**info, "dims": 3, "weights": "random initial weights (no 3D checkpoint)",
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "spacing_mm": params["spacing_3d_mm"]},
            **_volume_timings(lambda: _volume_3d(volume, factor),
                              lambda x: _forward(model, _formatted(x, bf16, 3), bf16), params["volume_repeats"])}


def _volume_timings(prepare, network, repeats: int) -> dict:
    """The model input's shape and the preprocessing, network and total seconds (sum of the medians)."""
    x = prepare()
    timings = {"preprocess_s": _timed(prepare, repeats, 1.0, warmup=VOLUME_WARMUP),
               "network_s": _timed(lambda: network(x), repeats, 1.0, warmup=VOLUME_WARMUP)}
    timings["total_s"] = {"median": round(timings["preprocess_s"]["median"] + timings["network_s"]["median"], 4)}
    return {"model_input": list(x.shape), "timings": timings}


def measure_agreement(_params: dict, _bf16: bool) -> dict:
    """fp32 against bf16 on the same inputs: the 2D model on four slices, the 3D model on a small volume."""
    model, info = _model_2d()
    slices = np.stack([normalize_image(_phantom((info["input_size"],) * 2, seed)) for seed in range(4)])
    volume = normalize_image(_phantom(AGREEMENT_3D_SHAPE))
    return {"2d": _compare(model, torch.from_numpy(slices)[:, None], 2),
            "3d": _compare(_model_3d(info), torch.from_numpy(volume)[None, None], 3)}


def _compare(model: PisovNet, x: torch.Tensor, dims: int) -> dict:
    ref = _forward(model, x, bf16=False)
    low = _forward(_formatted(model, True, dims), _formatted(x, True, dims), bf16=True)
    a, b = ref["mask"].flatten().double(), low["mask"].float().flatten().double()
    cosine = F.cosine_similarity(ref["embedding"].float(), low["embedding"].float())
    return {"mask_logit_correlation": round(float(torch.corrcoef(torch.stack([a, b]))[0, 1]), 6),
            "mask_decision_agreement": round(float(((a > 0) == (b > 0)).double().mean()), 6),
            "mask_logit_max_abs_diff": round(float((a - b).abs().max()), 6),
            "embedding_cosine_min": round(float(cosine.min()), 6)}


MEASURES = {"preprocess": measure_preprocess, "slice_2d": measure_slice_2d, "volume_2d": measure_volume_2d,
            "volume_3d": measure_volume_3d, "agreement": measure_agreement}
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
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")]
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), [])
    threads = {r["threads"] for r in results.values() if "threads" in r}
    return {"cpu": models[0] if models else platform.processor(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "torch": torch.__version__, "threads": sorted(threads) if len(threads) > 1 else next(iter(threads), None),
            "bf16_cpu_flags": [f for f in flags if "bf16" in f or f.startswith("amx")]}


def _print_table(report: dict) -> None:
    print(f"{'median':44s} {'fp32':>9s} {'bf16':>9s}")
    for key in SUMMARY_KEYS.values():
        for t in next(iter(report[key].values()), {}):
            cells = [report[key].get(p, {}).get(t) for p in PRECISIONS]
            print(f"{key + '.' + t:44s} " + " ".join(f"{c:>9.4g}" if c is not None else f"{'-':>9s}" for c in cells))
    for key in ("preprocess_2d_ms", "peak_rss_mb", "bf16_agreement", "failed_configs"):
        print(f"{key}: {json.dumps(report[key])}")
