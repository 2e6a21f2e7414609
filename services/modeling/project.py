"""`tumorsearch project`: fit the closed-form projection (shared/model/projection.py) on a checkpoint's
training folds and write a new checkpoint whose embedding is the projected RoiPool vector."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import torch

from services.modeling.settings import ModelSettings
from shared.config.startup import settings_or_exit
from shared.model import checkpoint
from shared.model.config import TrainConfig
from shared.model.device import pick_device
from shared.model.evaluation import expert_boxes
from shared.model.figshare import load_figshare
from shared.model.inference import predict
from shared.model.projection import SHRINKAGE, fit_projection


def command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tumorsearch project", description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint without projection")
    p.add_argument("--out", type=Path, required=True, help="the new checkpoint folder")
    p.add_argument("--shrinkage", type=float, default=SHRINKAGE)
    args = p.parse_args(argv)
    settings = settings_or_exit(ModelSettings, os.environ, "project")
    device = pick_device(settings.device)
    model, card = checkpoint.load(args.checkpoint, device, settings.precision)
    if model.projection is not None:
        print(f"tumorsearch project: expected a checkpoint without projection, found one in {args.checkpoint}")
        return 2
    data = load_figshare(settings.figshare_dir, card["architecture"]["input_size"]).folds_in(card["train_folds"])
    pred = predict(model, data.images, expert_boxes(data.masks), device)
    w, b = fit_projection(pred.embeddings["expert"], data.types, args.shrinkage)
    projected, new_card = with_projection(model, card, w, b, args.shrinkage)
    checkpoint.save(args.out, projected, new_card, train_state=None)
    print(f"checkpoint {args.out} ({new_card['model_version']}): projection fitted on folds {card['train_folds']}")
    return 0


def with_projection(model, card: dict, w, b, shrinkage: float):
    config = replace(TrainConfig.from_json(card["config"]), projection=w.shape[0])
    projected = checkpoint.build_model(config)
    missing, unexpected = projected.load_state_dict(model.state_dict(), strict=False)
    if unexpected or set(missing) != {"projection.weight", "projection.bias"}:
        raise RuntimeError(f"projection: expected only the projection to be new, found missing={missing} "
                           f"unexpected={unexpected}")
    with torch.no_grad():
        projected.projection.weight.copy_(torch.from_numpy(w))
        projected.projection.bias.copy_(torch.from_numpy(b))
    new_card = {**card, "config": config.to_json(), "metrics": {}}
    new_card["architecture"] = {**card["architecture"], "projection": config.projection}
    new_card["embedding"] = {**card["embedding"], "source": "RoiPool of the backbone + closed-form projection "
                             f"(within-type whitening, shrinkage {shrinkage}, fitted on folds {card['train_folds']})"}
    new_card["projected_from"] = card["model_version"]
    return projected.eval(), new_card
