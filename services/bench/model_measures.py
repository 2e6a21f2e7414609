"""What `tumorsearch bench model` measures, one function per configuration; each runs inside the fresh
child process that services/bench/model.py starts (see its docstring for the protocol)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from shared.model.checkpoint import SHIPPED, build_model, load
from shared.model.figshare import SOURCE_SPACING_MM
from shared.model.config import TrainConfig
from shared.model.device import autocast
from shared.model.network import STRIDE, PisovNet
from shared.model.preprocess import normalize_image, resize_image

WARMUP = 2         # a slice's warm-up runs: oneDNN builds its kernels for a shape on the first call
VOLUME_WARMUP = 1  # a volume's run is seconds long; one warm-up builds the kernels
AGREEMENT_3D_SHAPE = (32, 64, 64)
CPU = torch.device("cpu")


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
                   "channels": config.channels, "blocks": config.blocks, "seg_channels": config.seg_channels,
                   "mid_level": config.mid_level, "context": config.context, "mask_levels": config.mask_levels,
                   "symmetry": config.symmetry,
                   "input_size": config.size, "spacing_mm": round(SOURCE_SPACING_MM * 256 / config.size, 4)}


def _model_3d(info: dict) -> PisovNet:
    torch.manual_seed(0)
    return PisovNet(dims=3, in_channels=1, channels=info["channels"], blocks=info["blocks"],
                    seg_channels=info["seg_channels"], mid_level=info["mid_level"],
                    context=info["context"], mask_levels=info["mask_levels"], symmetry=info["symmetry"]).eval()


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


def _pad(x: torch.Tensor, dims: int, multiple: int) -> torch.Tensor:
    """Pad the spatial sides to multiples of the model's input multiple with the normalised background (-1),
    as the worker does."""
    pads = []
    for n in reversed(x.shape[-dims:]):
        pads += [0, -n % multiple]
    return F.pad(x, pads, value=-1.0)


def _resampled(x: torch.Tensor, factor: float) -> torch.Tensor:
    size = [max(STRIDE, round(n * factor)) for n in x.shape[2:]]
    mode = "area" if factor < 1 else ("bilinear" if x.dim() == 4 else "trilinear")
    return F.interpolate(x, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))


def _slices_2d(volume: np.ndarray, factor: float, multiple: int) -> torch.Tensor:
    """In-plane resampling, then per-slice normalisation: each slice reaches the net as a training image."""
    planes = _resampled(torch.from_numpy(volume)[:, None], factor)[:, 0].numpy()
    return _pad(torch.from_numpy(np.stack([normalize_image(s) for s in planes]))[:, None], 2, multiple)


def _volume_3d(volume: np.ndarray, factor: float, multiple: int) -> torch.Tensor:
    grid = _resampled(torch.from_numpy(volume)[None, None], factor)[0, 0].numpy()
    return _pad(torch.from_numpy(normalize_image(grid))[None, None], 3, multiple)


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

    return {"model": info, **_volume_timings(lambda: _slices_2d(volume, factor, model.input_multiple), network,
                                             params["volume_repeats"])}


def measure_volume_3d(params: dict, bf16: bool) -> dict:
    _, info = _model_2d()
    model = _formatted(_model_3d(info), bf16, 3)
    volume, factor = _phantom(params["volume_shape"]), params["source_spacing_mm"] / params["spacing_3d_mm"]
    return {"model": {**info, "dims": 3, "weights": "random initial weights (no 3D checkpoint)",
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "spacing_mm": params["spacing_3d_mm"]},
            **_volume_timings(lambda: _volume_3d(volume, factor, model.input_multiple),
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
