"""`tumorsearch evaluate`: one test fold against a database of the other folds, twice — with the expert
tumour box and fully automatically with the box from the model's own segmentation."""

from __future__ import annotations

import time

import numpy as np
import torch

from shared.model.batch import derived_batch_labels
from shared.model.figshare import Slices
from shared.model.inference import Predictions, predict
from shared.model.network import PisovNet
from shared.model.retrieval import dice_scores, distance_size_spearman, knn_accuracy, map_and_p10
from shared.model.tasks import CLASSIFICATION_TASKS, TUMOR_TYPES, mask_box
from shared.model.tumour_free import mirrored_slice_findings
from shared.vectorstore.expansion import DEFAULT_NEIGHBOURS, expanded_queries


def expert_boxes(masks: np.ndarray) -> np.ndarray:
    return np.array([mask_box(m) or (-1, -1, -1, -1) for m in masks])


def task_labels(data: Slices) -> dict[str, np.ndarray]:
    masks = torch.from_numpy(data.masks)[:, None].float()
    labels = {k: v.numpy() for k, v in derived_batch_labels(masks, torch.from_numpy(data.spacing_mm)).items()}
    labels["type"] = data.types
    return labels


def evaluate(model: PisovNet, data: Slices, test_fold: int, device: torch.device) -> dict:
    started = time.perf_counter()
    test, base = data.folds_in([test_fold]), data.select(data.folds != test_fold)
    pred_q = predict(model, test.images, expert_boxes(test.masks), device)
    pred_d = predict(model, base.images, expert_boxes(base.masks), device)
    result = {"test_fold": test_fold, "queries": len(test), "database": len(base)}
    for kind in ("expert", "auto"):
        m, p, _ = map_and_p10(pred_q.embeddings[kind], test.types, pred_d.embeddings[kind], base.types)
        result[f"map_{kind}_box"], result[f"p10_{kind}_box"] = round(m, 4), round(p, 4)
    result["query_expansion"] = _expanded(pred_q, pred_d, test, base)
    result["auto_box_found"] = round(float((pred_q.auto_boxes[:, 0] >= 0).mean()), 4)
    # Diagnostic only (inference.py): every image boxed, the most likely region where nothing passed 0.5.
    m, _, _ = map_and_p10(pred_q.embeddings["forced"], test.types, pred_d.embeddings["forced"], base.types)
    result["map_forced_box"] = round(m, 4)
    dice = dice_scores(pred_q.masks, test.masks)
    result["dice"] = round(float(dice.mean()), 4)
    result["dice_by_type"] = {name: round(float(dice[test.types == i].mean()), 4)
                              for i, name in enumerate(TUMOR_TYPES) if (test.types == i).any()}
    result.update(_criteria(pred_q, pred_d, test, base))
    result["mirrored_tumour_free"] = mirrored_slice_findings(model, test, device)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _expanded(pred_q: Predictions, pred_d: Predictions, test: Slices, base: Slices,
              neighbours: int = DEFAULT_NEIGHBOURS) -> dict:
    """The same two rankings with average query expansion, as the gateway ranks (shared.vectorstore.expansion)."""
    result: dict = {"neighbours": neighbours}
    for kind in ("expert", "auto"):
        queries = expanded_queries(pred_q.embeddings[kind], pred_d.embeddings[kind], neighbours)
        m, p, _ = map_and_p10(queries, test.types, pred_d.embeddings[kind], base.types)
        result[f"map_{kind}_box"], result[f"p10_{kind}_box"] = round(m, 4), round(p, 4)
    return result


def _criteria(pred_q: Predictions, pred_d: Predictions, test: Slices, base: Slices) -> dict:
    q_labels, d_labels = task_labels(test), task_labels(base)
    knn = {task: knn_accuracy(pred_q.embeddings["expert"], q_labels[task], pred_d.embeddings["expert"],
                              d_labels[task], len(CLASSIFICATION_TASKS[task].classes))
           for task in CLASSIFICATION_TASKS}
    area_q = test.masks.sum((1, 2)) * test.spacing_mm ** 2
    area_d = base.masks.sum((1, 2)) * base.spacing_mm ** 2
    accuracy = {task: round(float((np.nanargmax(np.nan_to_num(p, nan=-1), 1) == q_labels[task]).mean()), 4)
                for task, p in pred_q.probabilities.items()}
    return {
        "knn_accuracy": knn,
        "head_accuracy": accuracy,
        "spearman_distance_size": round(distance_size_spearman(
            pred_q.embeddings["expert"], area_q, pred_d.embeddings["expert"], area_d), 4),
    }
