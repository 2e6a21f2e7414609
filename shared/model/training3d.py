"""The short training loop of the dims=3 network on preprocessed volumes (shared.model.volumes), its
checkpoint (the 2D folder format: weights.pt + model_card.json + train_state.pt, "dims": 3), and the
per-volume evaluation (Dice, RoiPool embedding).

Tasks: segmentation (volumes with a mask), tumour type (when labelled) and the size bin derived from
the mask's volume in mm³. A missing label (no type, or no mask for the size) adds nothing to the loss.
The RoiPool box is the mask's bounding box; a volume without a mask is pooled over its whole grid, so
its type label still trains the classifier (the missing-label rule concerns labels, not boxes).
No augmentation: this loop proves the 3D path end to end; it is not tuned for accuracy.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from shared.model.checkpoint import CARD, STATE, WEIGHTS, write_json_atomically
from shared.model.device import autocast, seed_everything
from shared.model.losses import mask_loss, task_loss
from shared.model.mask_rule import MaskRule
from shared.model.network import STRIDE, PisovNet
from shared.model.preprocess import HIGH_PERCENTILE, LOW_PERCENTILE
from shared.model.tasks import MISSING, SIZE_NAMES, mask_box
from shared.model.volumes import AXES, VOLUME_TYPES, Volume, check_shape
from shared.model.steps import optimisation_step

# Rough clinical cut-offs, not tertiles of any data set: < 5 cm³ (about 2 cm across) is small,
# > 30 cm³ (about 4 cm across) is large.
SIZE_BINS_MM3 = (5000.0, 30000.0)
TASKS = {"type": VOLUME_TYPES, "size": SIZE_NAMES}
TASK_WEIGHTS = {"type": 1.0, "size": 0.5}


@dataclass(frozen=True)
class Train3DConfig:
    channels: int = 16
    blocks: int = 2
    epochs: int = 10
    batch_size: int = 1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    spacing_mm: float = 2.0
    shape: tuple[int, int, int] = (80, 112, 112)
    test_fold: int = 0  # 0 = train on every volume

    def __post_init__(self) -> None:
        check_shape(self.shape)
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"batch size and epochs: expected >= 1, found {self.batch_size}, {self.epochs}")

    def to_json(self) -> dict:
        return {**asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict) -> "Train3DConfig":
        return cls(**{**data, "shape": tuple(data["shape"])})


def build_model(config: Train3DConfig) -> PisovNet:
    return PisovNet(dims=3, in_channels=1, channels=config.channels, blocks=config.blocks,
                    tasks={name: len(classes) for name, classes in TASKS.items()})


def volume_labels(volume: Volume) -> tuple[tuple[int, ...], dict[str, int]]:
    """(RoiPool box (start..., end...) in voxels, labels {type, size}) of one volume."""
    box = mask_box(volume.mask) if volume.mask is not None else None
    size = MISSING
    if box is not None:
        mm3 = float(volume.mask.sum()) * float(np.prod(volume.spacing_mm))
        size = int(np.searchsorted(SIZE_BINS_MM3, mm3, side="right"))
    whole = (0, 0, 0, *volume.image.shape)
    return box or whole, {"type": volume.type, "size": size}


def make_batch(volumes: list[Volume]) -> dict:
    boxes, labels = zip(*(volume_labels(v) for v in volumes))
    empty = np.zeros(volumes[0].image.shape, dtype=bool)
    masks = np.stack([v.mask if v.mask is not None else empty for v in volumes])
    return {
        "images": torch.from_numpy(np.stack([v.image for v in volumes]))[:, None],
        "masks": torch.from_numpy(masks)[:, None].float(),
        "has_mask": torch.tensor([v.mask is not None for v in volumes]),
        "boxes": torch.tensor(boxes),
        "labels": {name: torch.tensor([lab[name] for lab in labels]) for name in TASKS},
    }


def batch_loss(model: PisovNet, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    out = model(batch["images"], batch["boxes"])
    parts = {"segmentation": mask_loss(out["mask"], batch["masks"], batch["has_mask"])}
    for name in TASKS:
        parts[name] = TASK_WEIGHTS[name] * task_loss(out[name], batch["labels"][name])
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def train3d(config: Train3DConfig, volumes: list[Volume], out: Path, code_version: str,
            on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train on the volumes outside config.test_fold (CPU; bf16 autocast where native), writing `out` every epoch;
    resumes when `out` holds an unfinished run of the same configuration."""
    seed_everything(config.seed)
    train_set = [v for v in volumes if v.fold != config.test_fold]
    _check_volumes(train_set, config)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = math.ceil(len(train_set) / config.batch_size)
    total, warmup = steps * config.epochs, min(steps, steps * config.epochs // 4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, total, warmup))
    card, start = _resume_or_start(Path(out), model, optimizer, scheduler, config, code_version, train_set)
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        losses = _epoch(model, optimizer, scheduler, train_set, config, epoch)
        card["history"].append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - began, 1), **losses})
        card["epochs_done"], card["complete"] = epoch + 1, epoch + 1 == config.epochs
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1}
        save(Path(out), model, card, state)
        if on_epoch:
            on_epoch(card["history"][-1])
    return card


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _check_volumes(volumes: list[Volume], config: Train3DConfig) -> None:
    if not volumes:
        raise ValueError(f"training: expected volumes outside test fold {config.test_fold}, found none")
    wrong = [v.volume_id for v in volumes if v.image.shape != config.shape]
    if wrong:
        raise ValueError(f"training: expected every volume preprocessed to {config.shape}, found others: {wrong}")


def _epoch(model, optimizer, scheduler, volumes: list[Volume], config: Train3DConfig, epoch: int) -> dict:
    """One pass in an order fixed by (seed, epoch); returns the mean of each loss part."""
    model.train()
    order = np.random.default_rng([config.seed, epoch]).permutation(len(volumes))
    batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    sums: dict[str, float] = {}
    for index in batches:
        batch = make_batch([volumes[i] for i in index])
        with autocast(torch.device("cpu")):
            loss, parts = batch_loss(model, batch)
        optimisation_step(loss, parts, optimizer, scheduler, sums)
    return {k: round(v / len(batches), 4) for k, v in sums.items()}


@torch.no_grad()
def evaluate_volumes(model: PisovNet, volumes: list[Volume]) -> list[dict]:
    """Per volume: Dice of the predicted mask (None without a mask), the box used and the embedding.
    The box is the mask's (so the embedding does not depend on segmentation quality) or, without a
    mask, the bounding box of the prediction (the whole grid when nothing is predicted). Only the
    model's forward() is used: a second pass for the predicted box is cheap next to depending on
    the network's internals."""
    model.eval()
    results = []
    for volume in volumes:
        image = torch.from_numpy(volume.image)[None, None]
        whole = (0, 0, 0, *volume.image.shape)
        box, source = (mask_box(volume.mask), "mask") if volume.mask is not None else (whole, "whole")
        out = _forward(model, image, box)
        predicted = (out["mask"][0, 0].float() > 0).numpy()
        if volume.mask is None:
            box, source = (mask_box(predicted), "prediction") if predicted.any() else (whole, "whole")
            out = _forward(model, image, box)
        results.append({"volume_id": volume.volume_id, "dice": _dice(predicted, volume.mask),
                        "box": list(box), "box_source": source, "embedding": out["embedding"][0].float().numpy()})
    return results


def _forward(model: PisovNet, image: torch.Tensor, box: tuple[int, ...]) -> dict[str, torch.Tensor]:
    with autocast(torch.device("cpu")):
        return model(image, torch.tensor([box]))


def _dice(predicted: np.ndarray, truth: np.ndarray | None) -> float | None:
    if truth is None:
        return None
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (predicted & truth).sum() / total)


def new_card(config: Train3DConfig, code_version: str, volumes: list[Volume]) -> dict:
    return {
        "model_version": None,
        "architecture": {"name": "PisovNet", "dims": 3, "in_channels": 1, "channels": config.channels,
                         "blocks": config.blocks, "stride": STRIDE, "projection": 0,
                         "input_shape": list(config.shape), "spacing_mm": config.spacing_mm},
        "tasks": {name: list(classes) for name, classes in TASKS.items()},
        "segmentation": True,
        "size_bins_mm3": list(SIZE_BINS_MM3),
        "embedding": {"source": "RoiPool of the backbone (3D box)", "size": config.channels, "distance": "Cosine"},
        "preprocessing": {"axes": f"(D, H, W) towards {AXES}", "resample_to_spacing_mm": config.spacing_mm,
                          "shape": list(config.shape), "crop": "centred crop/pad with -1",
                          "normalization": f"per volume: clip((x - p{LOW_PERCENTILE:g}) / (p{HIGH_PERCENTILE:g} - "
                                           f"p{LOW_PERCENTILE:g}), 0, 1), then (v - 0.5) * 2"},
        "data": f"{len(volumes)} volumes: {', '.join(v.volume_id for v in volumes)}",
        "test_fold": config.test_fold, "seed": config.seed, "config": config.to_json(),
        "code_version": code_version, "epochs_done": 0, "complete": False, "history": [], "metrics": {},
    }


def save(folder: Path, model: PisovNet, card: dict, train_state: dict | None) -> None:
    """Weights, then the optional optimizer state, then the card (each replaced atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(weights, folder / (WEIGHTS + ".tmp"))
    (folder / (WEIGHTS + ".tmp")).replace(folder / WEIGHTS)
    digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()[:10]
    card["model_version"] = f"pisov3d-c{card['architecture']['channels']}-{digest}"
    if train_state is not None:
        torch.save(train_state, folder / (STATE + ".tmp"))
        (folder / (STATE + ".tmp")).replace(folder / STATE)
    write_json_atomically(folder / CARD, card)


def load(folder: Path) -> tuple[PisovNet, dict]:
    """The model (eval mode, CPU) and card of a 3D checkpoint folder."""
    folder = Path(folder)
    if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"checkpoint: expected {CARD} and {WEIGHTS} in {folder}, found "
                                f"{sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'no folder'}")
    card = json.loads((folder / CARD).read_text())
    dims = card.get("architecture", {}).get("dims")
    if dims != 3:
        raise ValueError(f"checkpoint {folder}: expected a 3D model card (dims 3), found dims {dims}")
    model = build_model(Train3DConfig.from_json(card["config"]))
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    model.mask_rule = MaskRule.from_card(card)
    return model.eval(), card


def _resume_or_start(out: Path, model, optimizer, scheduler, config: Train3DConfig, code_version: str,
                     volumes: list[Volume]) -> tuple[dict, int]:
    if not (out / STATE).is_file():
        return new_card(config, code_version, volumes), 0
    _, card = load(out)
    if card["config"] != config.to_json():
        raise ValueError(f"resume: {out} holds a run with another configuration; expected {config.to_json()}, "
                         f"found {card['config']} (use a new --out)")
    model.load_state_dict(torch.load(out / WEIGHTS, weights_only=True))
    state = torch.load(out / STATE, weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return card, int(state["epoch"])
