"""Choosing a checkpoint's mask rule (threshold, flip averaging) honestly: on a validation fold the
choosing model never saw, with a database of the folds it was trained on, by the automatic retrieval
protocol of `tumorsearch evaluate` (mAP with the box from the model's own mask; Dice breaks ties).
Each rule is also scored where it should find nothing: the validation fold's slices made tumour-free by
mirroring their healthy half (tumour_free.py). A site that wants fewer false findings than the best
automatic mAP brings can cap that share; the best rule is then chosen among those under the cap.

The shipped model is trained on folds 1-4 and tested on fold 5, so it cannot choose its own rule
without looking at its test fold: an inner model trained the same way on folds 1-3 chooses on fold 4,
and the chosen rule is written into the shipped card (docs/model.md)."""

from __future__ import annotations

import torch

from shared.model.evaluation import expert_boxes
from shared.model.figshare import Slices
from shared.model.inference import predict
from shared.model.mask_rule import MaskRule
from shared.model.network import PisovNet
from shared.model.retrieval import dice_scores, map_and_p10
from shared.model.tumour_free import score_mirrored

THRESHOLDS = (0.5, 0.4, 0.3, 0.2)


def rule_grid(thresholds: tuple[float, ...] = THRESHOLDS) -> list[MaskRule]:
    return [MaskRule(threshold, flip) for flip in (False, True) for threshold in thresholds]


def score_rules(model: PisovNet, data: Slices, fold: int, database_folds: list[int], device: torch.device,
                rules: list[MaskRule]) -> list[dict]:
    """One row per rule: automatic mAP / P@10, share of images with a box, Dice, and findings on the mirrored
    tumour-free slices, all on `fold`."""
    if fold in database_folds:
        raise ValueError(f"calibration: expected a fold outside the database folds {database_folds}, found {fold}")
    queries, base = data.folds_in([fold]), data.folds_in(database_folds)
    database = predict(model, base.images, expert_boxes(base.masks), device, rule=MaskRule()).embeddings["expert"]
    rows = []
    for rule, mirrored in zip(rules, score_mirrored(model, queries, rules, device)):
        pred = predict(model, queries.images, None, device, rule=rule)
        mean_ap, p10, _ = map_and_p10(pred.embeddings["auto"], queries.types, database, base.types)
        rows.append({**rule.to_json(), "map_auto_box": round(mean_ap, 4), "p10_auto_box": round(p10, 4),
                     "auto_box_found": round(float((pred.auto_boxes[:, 0] >= 0).mean()), 4),
                     "dice": round(float(dice_scores(pred.masks, queries.masks).mean()), 4)} | mirrored)
    return rows


def best_rule(rows: list[dict], max_mirrored_share: float | None = None) -> dict:
    """The row with the highest automatic mAP; Dice, then the plainer rule, break ties. With
    `max_mirrored_share`, only among rows whose share of mirrored tumour-free slices with a finding is at
    most that."""
    if not rows:
        raise ValueError("calibration: expected at least one scored rule, found none")
    allowed = rows if max_mirrored_share is None else [r for r in rows if r["mirrored_share"] <= max_mirrored_share]
    if not allowed:
        lowest = min(r["mirrored_share"] for r in rows)
        raise ValueError(f"calibration: expected a rule with at most {max_mirrored_share:.1%} of the mirrored "
                         f"tumour-free slices with a finding, found none (the lowest is {lowest:.1%})")
    return max(allowed, key=lambda r: (r["map_auto_box"], r["dice"], not r["flip_average"], r["threshold"]))


def check_independence(chooser: dict, fold: int, target: dict) -> None:
    """The target's test fold must be neither in the chooser's training folds nor the validation fold."""
    seen = set(chooser["train_folds"]) | {fold}
    if target["test_fold"] in seen:
        raise ValueError(f"calibration: the target's test fold {target['test_fold']} must stay unseen, found it "
                         f"among the chooser's training folds {chooser['train_folds']} or the validation fold {fold}")
    if fold in chooser["train_folds"]:
        raise ValueError(f"calibration: expected a validation fold the chooser did not train on, found {fold} "
                         f"in its training folds {chooser['train_folds']}")
