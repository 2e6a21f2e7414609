"""The training loop: multitask loss, bf16 autocast where the CPU runs it natively (device.py), cosine
schedule, a checkpoint after every epoch, and resumption from the last one (same config required).
Deterministic for a seed: the batch order and augmentation of epoch e depend only on (seed, e)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shared.model import checkpoint
from shared.model.augment import Augmentation, augment_batch
from shared.model.batch import boxes_from_masks, derived_batch_labels
from shared.model.config import TrainConfig
from shared.model.device import autocast, precision_name, reduced_precision, seed_everything
from shared.model.embedding_memory import EmbeddingMemory
from shared.model.figshare import Slices
from shared.model.healthy_mirror import mirror_healthy_halves
from shared.model.losses import coarse_mask_loss, mask_loss, supervised_contrastive, task_loss
from shared.model.negatives import anatomy_free
from shared.model.reframe import reframe_batch
from shared.model.steps import optimisation_step
from shared.model.tasks import CLASSIFICATION_TASKS, MISSING
from shared.model.tumour_paste import paste_tumours
from shared.model.weight_average import WeightAverage

WARMUP_EPOCHS = 1


def schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def make_batch(data: Slices, index: np.ndarray, config: TrainConfig, generator: torch.Generator) -> dict:
    images = torch.from_numpy(data.images[index])[:, None]
    masks = torch.from_numpy(data.masks[index])[:, None].float()
    types = torch.from_numpy(data.types[index]).long()
    negatives = round(config.negatives * len(index))
    mirrors, pastes = round(config.healthy_mirrors * len(index)), round(config.tumour_paste * len(index))
    kept = len(index) - negatives
    taken = torch.zeros(kept, dtype=torch.bool)
    if pastes:  # before augmentation, so the pasted tumour is turned and shaded with its new brain
        taken, _ = paste_tumours(images[:kept], masks[:kept], types[:kept], pastes, generator)
    if mirrors:  # before augmentation, so the mirrored brain is rotated and shaded like any other
        mirror_healthy_halves(images[:kept], masks[:kept], mirrors, exclude=taken)
    if config.augment:
        augmentation = Augmentation(scale=config.scale, bias_field=config.bias_field, noise=config.noise,
                                    blur=config.blur, low_res=config.low_res)
        images, masks = augment_batch(images, masks, augmentation, generator)
    if config.reframe:  # after the affine, so the padding stays straight background as the worker's is
        images[:kept], masks[:kept] = reframe_batch(images[:kept], masks[:kept], config.reframe, generator)
    if negatives:  # the last samples become anatomy-free frames: empty mask, every label MISSING
        images[-negatives:] = anatomy_free(negatives, images.shape[-1], generator)
        masks[-negatives:] = 0
    boxes, has_tumour = boxes_from_masks(masks)
    labels = derived_batch_labels(masks, torch.from_numpy(data.spacing_mm[index]))
    labels["type"] = torch.where(has_tumour, types, torch.full_like(types, MISSING))
    return {"images": images.contiguous(memory_format=torch.channels_last), "masks": masks,
            "boxes": boxes, "labels": labels}


def mask_weights(config: TrainConfig, types: torch.Tensor) -> torch.Tensor | None:
    """Per-sample mask-loss weight from the tumour type; samples without a type (empty masks) weigh 1."""
    if not config.mask_type_weights:
        return None
    table = torch.tensor(config.mask_type_weights, dtype=torch.float32)
    known = types != MISSING
    return torch.where(known, table[types.clamp(min=0)], torch.ones(len(types)))


def batch_loss(model, batch: dict, config: TrainConfig,
               memory: EmbeddingMemory | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted multitask loss and its parts; with a `memory`, the metric term also compares with
    the embeddings it holds, and this batch's are added to it afterwards."""
    out = model(batch["images"], batch["boxes"])
    parts = {}
    if "segmentation" in config.tasks:
        every = torch.ones(len(batch["masks"]), dtype=torch.bool)
        weights = mask_weights(config, batch["labels"]["type"])
        parts["segmentation"] = config.seg_weight * mask_loss(out["mask"], batch["masks"], every, weights)
        if config.deep_supervision and out["mask_levels"]:
            parts["mask_levels"] = config.seg_weight * config.deep_supervision * coarse_mask_loss(
                out["mask_levels"], batch["masks"], every, weights)
    for name in config.classification_tasks:
        parts[name] = CLASSIFICATION_TASKS[name].weight * task_loss(out[name], batch["labels"][name])
    if config.metric_weight and "type" in config.tasks:
        embeddings, types = out["embedding"], batch["labels"]["type"]
        earlier = memory.contents() if memory is not None else None
        parts["metric"] = config.metric_weight * supervised_contrastive(embeddings, types, memory=earlier)
        if memory is not None:
            memory.push(embeddings, types)
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def train(config: TrainConfig, data: Slices, out: Path, device: torch.device, code_version: str,
          progress: bool = True, on_epoch: Callable[[dict], None] | None = None, precision: str = "auto") -> dict:
    """Train on config.folds of `data`, writing the checkpoint folder `out` after every epoch; `precision`
    as device.reduced_precision takes it."""
    seed_everything(config.seed)
    train_set = data.folds_in(config.folds)
    model = checkpoint.build_model(config).to(device).to(memory_format=torch.channels_last)
    model.bf16 = reduced_precision(device, precision)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(train_set) // config.batch_size
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: schedule(s, total, WARMUP_EPOCHS * steps_per_epoch))
    average = WeightAverage(model, config.weight_average) if config.weight_average else None
    memory = EmbeddingMemory(config.metric_memory) if config.metric_memory else None
    card, start = _resume_or_start(out, model, optimizer, scheduler, config, code_version, train_set, average,
                                   memory)
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        losses = _epoch(model, optimizer, scheduler, train_set, config, epoch, device, steps_per_epoch, progress,
                        average, memory)
        card["history"].append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - began, 1),
                                "precision": precision_name(device, model.bf16), **losses})
        card["epochs_done"], card["complete"] = epoch + 1, epoch + 1 == config.epochs
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1}
        if average:  # the card's weights are the average; training resumes from the live ones
            state.update(live_weights=model.state_dict(), average=average.state_dict())
        if memory is not None:  # so a resumed run compares with the same embeddings as an uninterrupted one
            state["metric_memory"] = memory.state_dict()
        checkpoint.save(out, model, card, state, weights=average.shadow if average else None)
        if on_epoch:
            on_epoch(card["history"][-1])
    return card


def _epoch(model, optimizer, scheduler, data: Slices, config: TrainConfig, epoch: int, device,
           steps: int, progress: bool, average: WeightAverage | None = None,
           memory: EmbeddingMemory | None = None) -> dict[str, float]:
    model.train()
    rng = np.random.default_rng([config.seed, epoch])
    generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
    order = rng.permutation(len(data))[: steps * config.batch_size].reshape(steps, config.batch_size)
    sums: dict[str, float] = {}
    bar = tqdm(order, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
    for index in bar:
        batch = make_batch(data, index, config, generator)
        batch = {k: _to(v, device) for k, v in batch.items()}
        with autocast(device, enabled=model.bf16):
            loss, parts = batch_loss(model, batch, config, memory)
        optimisation_step(loss, parts, optimizer, scheduler, sums)
        if average:
            average.update(model)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return {k: round(v / steps, 4) for k, v in sums.items()}


def _to(value, device):
    if isinstance(value, dict):
        return {k: v.to(device) for k, v in value.items()}
    return value.to(device)


def _resume_or_start(out: Path, model, optimizer, scheduler, config: TrainConfig, code_version: str,
                     train_set: Slices, average: WeightAverage | None,
                     memory: EmbeddingMemory | None = None) -> tuple[dict, int]:
    state_path = out / checkpoint.STATE
    if state_path.is_file():
        _, card = checkpoint.load(out)
        if not TrainConfig.from_json(card["config"]).same_run(config):
            raise ValueError(f"resume: {out} holds a run with another configuration; expected "
                             f"{config.to_json()}, found {card['config']} (use a new --out)")
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["live_weights"] if average else
                              torch.load(out / checkpoint.WEIGHTS, weights_only=True))
        if average:
            average.load_state_dict(state["average"])
        if memory is not None:
            memory.load_state_dict(state["metric_memory"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return card, int(state["epoch"])
    description = f"figshare CE-MRI, folds {list(config.folds)}: {len(train_set)} slices at {config.size}px"
    return checkpoint.new_card(config, code_version, description), 0
