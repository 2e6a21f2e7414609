"""Where segmentation loses Dice: the fold's Dice as `evaluate` reports it (mean of per-image Dice) and
pooled (all intersections over all areas, which weighs large tumours more), per tumour type, by quartile
of the expert area within a type, and the failures (Dice < 0.1; nothing predicted at all), listed one by
one by `failure_list`. The same breakdown for the average of several models' probabilities tells model
variance (which averaging removes) from what every model gets wrong alike."""

from __future__ import annotations

import numpy as np

from shared.model.retrieval import dice_scores
from shared.model.tasks import TUMOR_TYPES

FAILED_BELOW = 0.1
# How a failed image failed: nothing drawn at all; drawn only elsewhere; an overlap too small for Dice 0.1.
FAILURE_KINDS = ("nothing predicted", "elsewhere", "overlap")


def _summary(predicted: np.ndarray, expert: np.ndarray) -> dict:
    dice = dice_scores(predicted, expert)
    inter = (predicted & expert).sum((1, 2))
    total = predicted.sum((1, 2)) + expert.sum((1, 2))
    failed = dice < FAILED_BELOW
    return {"images": int(len(dice)), "dice": round(float(dice.mean()), 4) if len(dice) else None,
            "dice_pooled": round(float(2 * inter.sum() / max(total.sum(), 1)), 4),
            "failed": int(failed.sum()), "nothing_predicted": int((failed & (predicted.sum((1, 2)) == 0)).sum())}


def dice_breakdown(predicted: np.ndarray, expert: np.ndarray, types: np.ndarray) -> dict:
    """Summary of the whole set, then per type: its summary and one per quartile of the expert area."""
    if predicted.shape != expert.shape or len(types) != len(expert):
        raise ValueError(f"expected masks of one shape and a type per image; found {predicted.shape}, "
                         f"{expert.shape} and {len(types)} types")
    report = {"all": _summary(predicted, expert), "by_type": {}}
    area = expert.sum((1, 2))
    for index, name in enumerate(TUMOR_TYPES):
        keep = types == index
        if not keep.any():
            continue
        edges = np.quantile(area[keep], [0, 0.25, 0.5, 0.75, 1])
        quartile = np.clip(np.searchsorted(edges[1:-1], area[keep], side="right"), 0, 3)
        report["by_type"][name] = _summary(predicted[keep], expert[keep]) | {"area_quartiles": [
            {"area_px": [int(edges[q]), int(edges[q + 1])]} | _summary(predicted[keep][quartile == q],
                                                                        expert[keep][quartile == q])
            for q in range(4) if (quartile == q).any()]}
    return report


def failure_list(predicted: np.ndarray, expert: np.ndarray, probability: np.ndarray, types: np.ndarray,
                 ids: np.ndarray) -> list[dict]:
    """One row per failed image (Dice < 0.1), by image id: the expert's and the model's areas, the kind
    of failure (nothing drawn at all, drawn only elsewhere, or an overlap too small for Dice 0.1) and
    the model's highest tumour probability inside the expert mask — near 0 when the model saw nothing
    there, near the threshold when a lower one would have found it."""
    if probability.shape != expert.shape or predicted.shape != expert.shape:
        raise ValueError(f"expected probabilities and masks of one shape; found {probability.shape}, "
                         f"{predicted.shape} and {expert.shape}")
    dice = dice_scores(predicted, expert)
    rows = []
    for k in np.nonzero(dice < FAILED_BELOW)[0]:
        drawn, overlap = int(predicted[k].sum()), int((predicted[k] & expert[k]).sum())
        inside = probability[k][expert[k]]
        rows.append({"image_id": int(ids[k]), "type": TUMOR_TYPES[int(types[k])],
                     "expert_area_px": int(expert[k].sum()), "predicted_area_px": drawn,
                     "dice": round(float(dice[k]), 4),
                     "kind": FAILURE_KINDS[0 if drawn == 0 else 1 if overlap == 0 else 2],
                     "peak_probability_inside": round(float(inside.max()), 3) if inside.size else 0.0})
    return sorted(rows, key=lambda row: row["image_id"])
