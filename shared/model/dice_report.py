"""Where segmentation loses Dice: the fold's Dice as `evaluate` reports it (mean of per-image Dice) and
pooled (all intersections over all areas, which weighs large tumours more), per tumour type, by quartile
of the expert area within a type, and the failures (Dice < 0.1; nothing predicted at all). The same
breakdown for the average of several models' probabilities tells model variance (which averaging
removes) from what every model gets wrong alike."""

from __future__ import annotations

import numpy as np

from shared.model.retrieval import dice_scores
from shared.model.tasks import TUMOR_TYPES

FAILED_BELOW = 0.1


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
