"""A checkpoint is a folder: `weights.pt` (the network's state), `model_card.json` (what it is, how it
was trained, how it scored) and, while training, `train_state.pt` (optimizer and schedule, to resume).

The card is rewritten after every epoch, so an interrupted run says exactly how far it got.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from shared.model.config import TrainConfig
from shared.model.device import reduced_precision
from shared.model.figshare import SOURCE_SIZE, SOURCE_SPACING_MM
from shared.model.mask_rule import MaskRule
from shared.model.network import STRIDE, PisovNet
from shared.model.tasks import CLASSIFICATION_TASKS

WEIGHTS, CARD, STATE = "weights.pt", "model_card.json", "train_state.pt"


def build_model(config: TrainConfig) -> PisovNet:
    return PisovNet(dims=2, in_channels=1, channels=config.channels, blocks=config.blocks,
                    tasks=config.classification_tasks, projection=config.projection,
                    seg_channels=config.seg_channels, mid_level=config.mid_level,
                    context=config.context, mask_levels=config.mask_levels, symmetry=config.symmetry,
                    deep_supervision=bool(config.deep_supervision))


def new_card(config: TrainConfig, code_version: str, data_description: str) -> dict:
    spacing = SOURCE_SPACING_MM * SOURCE_SIZE / config.size
    return {
        "model_version": None,
        "architecture": {"name": "PisovNet", "dims": 2, "in_channels": 1, "channels": config.channels,
                         "blocks": config.blocks, "seg_channels": config.seg_channels,
                         "mid_level": config.mid_level, "context": config.context,
                         "mask_levels": config.mask_levels, "symmetry": config.symmetry, "stride": STRIDE,
                         "projection": config.projection,
                         "input_size": config.size, "spacing_mm": round(spacing, 4)},
        "tasks": {t: list(CLASSIFICATION_TASKS[t].classes) for t in config.classification_tasks},
        "segmentation": "segmentation" in config.tasks,
        "embedding": {"source": "RoiPool of the backbone" + (" + linear projection" if config.projection else ""),
                      "size": config.projection or config.channels, "distance": "Cosine"},
        "preprocessing": {"normalization": "per 2D image: clip((x - p1) / (p99 - p1), 0, 1), then (v - 0.5) * 2",
                          "resample_to_spacing_mm": round(spacing, 4)},
        "data": data_description,
        "train_folds": list(config.folds), "test_fold": config.test_fold, "seed": config.seed,
        "config": config.to_json(), "code_version": code_version,
        "epochs_done": 0, "complete": False, "history": [], "metrics": {},
    }


def write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def save(folder: Path, model: PisovNet, card: dict, train_state: dict | None,
         weights: dict[str, torch.Tensor] | None = None) -> None:
    """`weights`: what to ship instead of the model's own state (a moving average of it)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in (weights or model.state_dict()).items()}
    torch.save(weights, folder / (WEIGHTS + ".tmp"))
    os.replace(folder / (WEIGHTS + ".tmp"), folder / WEIGHTS)
    card["model_version"] = model_version(card, folder / WEIGHTS)
    if train_state is not None:
        torch.save(train_state, folder / (STATE + ".tmp"))
        os.replace(folder / (STATE + ".tmp"), folder / STATE)
    write_json_atomically(folder / CARD, card)


def model_version(card: dict, weights: Path) -> str:
    """pisov2d-c64-<first 10 hex of the weights' SHA-256>: names the vector collection."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    return f"pisov2d-c{card['architecture']['channels']}-{digest}"


def load(folder: Path, device: torch.device | str = "cpu", precision: str = "auto") -> tuple[PisovNet, dict]:
    """The network and its card; `precision` bf16 / fp32 forces the network's arithmetic in inference
    (`model.bf16`), auto leaves it to the hardware (device.py)."""
    folder = Path(folder)
    if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"checkpoint: expected {CARD} and {WEIGHTS} in {folder}, found "
                                f"{sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'no folder'}")
    card = json.loads((folder / CARD).read_text())
    model = build_model(TrainConfig.from_json(card["config"]))
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    model.mask_rule = MaskRule.from_card(card)
    model.bf16 = None if precision == "auto" else reduced_precision(torch.device(device), precision)
    return model.to(device).eval(), card

# The checkpoint shipped in the repository (trained on folds 1-4; fold 5 is its test fold).
SHIPPED = Path(__file__).resolve().parent / "checkpoints" / "figshare-2d"
