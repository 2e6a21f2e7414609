"""The validation report: markdown tables from the runs' evaluations, and figures from one checkpoint."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import numpy as np
import torch

from services.modeling import figures
from services.modeling.common import code_version
from shared.model import checkpoint
from shared.model.device import precision_name, reduced_precision
from shared.model.evaluation import expert_boxes, task_labels
from shared.model.inference import predict
from shared.model.retrieval import map_and_p10, rankings
from shared.model.robustness import distort_boxes
from shared.model.tasks import TUMOR_TYPES

COLUMNS = [("mAP expert box", "map_expert_box"), ("P@10 expert", "p10_expert_box"),
           ("mAP auto box", "map_auto_box"), ("P@10 auto", "p10_auto_box"), ("Dice", "dice"),
           ("10-NN type", ("knn_accuracy", "type", 9)), ("10-NN size", ("knn_accuracy", "size", 9)),
           ("10-NN left/right", ("knn_accuracy", "horizontal", 9)),
           ("10-NN top/bottom", ("knn_accuracy", "vertical", 9)), ("Spearman dist/size", "spearman_distance_size")]
TITLES = {"cv": "5-fold cross-validation (each fold tested against the other four)",
          "sizes": "Embedding size (backbone channels), test fold 5 (paper Tab. 2)",
          "tasks": "Multitask versus single task, test fold 5, no metric term (paper Tab. 3)",
          "recipe": "What each addition to the recipe brought, test fold 5"}


def _value(result: dict, key) -> float:
    if isinstance(key, tuple):
        return result[key[0]][key[1]][key[2]]
    return result[key]


def _table(rows: list[tuple[str, dict]]) -> list[str]:
    lines = ["| run | epochs | " + " | ".join(c for c, _ in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for label, result in rows:
        cells = [f"{_value(result, k):.4f}" for _, k in COLUMNS]
        lines.append(f"| {label} | {result.get('epochs', '?')} | " + " | ".join(cells) + " |")
    return lines


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def _cv_summary(results: list[dict]) -> str:
    cells = [_mean_sd([_value(r, key) for r in results]) for _, key in COLUMNS]
    return "| **mean ± sd** | | " + " | ".join(cells) + " |"


def _where(device: torch.device, precision: str = "auto") -> str:
    """The machine the report is written on, and the network's arithmetic there (device.py)."""
    arithmetic = precision_name(device, reduced_precision(device, precision))
    if device.type != "cpu":
        return f"{device.type} (the network in {arithmetic})"
    return f"a {os.cpu_count()}-core CPU without GPU (the network in {arithmetic})"


def _provenance(args, results: dict, device: torch.device) -> str:
    """Who made the tables: the command, the code, the machine, the recipe, its length and its mask rule."""
    done = [r for r in results.values() if r]
    rules = {json.dumps(r.get("mask_rule"), sort_keys=True) for r in done}
    rule = "; ".join(sorted(rules)) if rules else "none yet"
    recipe = args.recipe.resolve()
    recipe = recipe.relative_to(Path.cwd()) if recipe.is_relative_to(Path.cwd()) else recipe
    length = ("as many as the recipe checkpoint" if args.epochs == args.recipe_epochs else
              f"fewer than the recipe checkpoint ({args.recipe_epochs}): these tables compare "
              "configurations with one another; the shipped model's own figures are in docs/model.md")
    return (f"Produced by `tumorsearch validate --epochs {args.epochs} --groups {args.groups} --work {args.work} "
            f"--out {args.out}` (code {code_version()}) on {_where(device, args.precision)}. Every run "
            f"uses the training recipe of `{recipe}` except what its table varies, and trains for "
            f"**{args.epochs} epochs**, {length}. Masks (Dice, automatic boxes) follow the recipe's mask rule: "
            f"{rule}.")


def _dice_by_type(rows: list[tuple[str, dict]]) -> list[str]:
    types = list(rows[0][1].get("dice_by_type", {}))
    lines = ["Dice by tumour type:", "", "| run | " + " | ".join(types) + " | automatic box found |",
             "|---|" + "---|" * (len(types) + 1)]
    for label, result in rows:
        by_type, found = result.get("dice_by_type", {}), result.get("auto_box_found")
        cells = [f"{by_type[t]:.4f}" if t in by_type else "—" for t in types]
        cells.append(f"{found:.1%}" if found is not None else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


EXPANDED = [("mAP expert box", "map_expert_box"), ("P@10 expert", "p10_expert_box"),
            ("mAP auto box", "map_auto_box"), ("P@10 auto", "p10_auto_box")]


def _expansion_table(rows: list[tuple[str, dict]]) -> list[str]:
    """The same folds ranked as the gateway ranks: with query expansion (shared/vectorstore/expansion.py).
    Evaluations made before expansion existed show a dash and stay out of the mean."""
    done = [r["query_expansion"] for _, r in rows if "query_expansion" in r]
    neighbours = sorted({e["neighbours"] for e in done})
    lines = [f"With query expansion ({', '.join(map(str, neighbours)) or '?'} neighbours), the ranking the gateway "
             "serves:", "", "| run | " + " | ".join(c for c, _ in EXPANDED) + " |", "|---|" + "---|" * len(EXPANDED)]
    for label, result in rows:
        expanded = result.get("query_expansion")
        cells = [f"{expanded[k]:.4f}" if expanded else "—" for _, k in EXPANDED]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(done) > 1:
        cells = [_mean_sd([e[k] for e in done]) for _, k in EXPANDED]
        lines.append(f"| **mean ± sd** ({len(done)} folds) | " + " | ".join(cells) + " |")
    return lines


def write_report(runs, results: dict, args, data, device: torch.device) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Validation of the multitask model", "", _provenance(args, results, device), ""]
    for group in ("cv", "sizes", "tasks", "recipe"):
        rows = [(r.label, results[r.name]) for r in runs if r.group == group and results.get(r.name)]
        missing = [r.label for r in runs if r.group == group and not results.get(r.name)]
        if not rows and not missing:
            continue
        lines += [f"## {TITLES[group]}", ""] + _table(rows)
        if group == "cv" and len(rows) > 1:
            lines.append(_cv_summary([r for _, r in rows]))
            lines += [""] + _expansion_table(rows) + [""] + _dice_by_type(rows)
        if missing:
            lines += ["", f"Not run (yet): {', '.join(missing)}."]
        lines.append("")
    lines += checkpoint_figures(args.checkpoint or checkpoint.SHIPPED, data, out, device, args.precision)
    (out / "README.md").write_text("\n".join(lines) + "\n")


def checkpoint_figures(folder: Path, data, out: Path, device: torch.device, precision: str = "auto") -> list[str]:
    if not (folder / checkpoint.CARD).is_file():
        return [f"Figures from a checkpoint: none ({folder} holds no checkpoint)."]
    model, card = checkpoint.load(folder, device, precision)
    test, base = data.folds_in([5]), data.select(data.folds != 5)
    q_boxes, d_boxes = expert_boxes(test.masks), expert_boxes(base.masks)
    pred_d = predict(model, base.images, d_boxes, device)
    lines = [f"## Figures and robustness of checkpoint `{card['model_version']}` (test fold 5)", "",
             "| query boxes | mAP | P@10 |", "|---|---|---|"]
    robustness = {}
    for fraction in (0.0, 0.1, 0.25):
        boxes = distort_boxes(q_boxes, fraction, test.images.shape[1:], seed=1)
        pred_q = predict(model, test.images, boxes, device)
        m, p10, _ = map_and_p10(pred_q.embeddings["expert"], test.types, pred_d.embeddings["expert"], base.types)
        robustness[fraction] = {"map": m, "p10": p10}
        label = f"each side scaled and shifted by up to ±{fraction:.0%}" if fraction else "exact expert boxes"
        lines.append(f"| {label} | {m:.4f} | {p10:.4f} |")
    pred_q = predict(model, test.images, q_boxes, device)
    _figures(pred_q, pred_d, test, base, out)
    lines += ["", "Robustness (paper Tab. 4): the model only ever saw exact boxes; the database keeps exact boxes.", ""]
    knn = card.get("metrics", {}).get("knn_accuracy")
    if knn:
        figures.knn_curves(knn, out / "knn.png", f"KNN accuracy against k, {card['model_version']}, fold 5")
        lines += ["KNN accuracy of the embedding for each task against k (paper Fig. 4), from the checkpoint's card:",
                  "", "![KNN accuracy against k](knn.png)", ""]
    lines += ["t-SNE map of the fold-5 and fold 1-4 embeddings (paper Fig. 5):", "", "![t-SNE](tsne.png)", "",
              "Retrieval examples (paper Fig. 6): two fold-5 queries per type (yellow outline: expert mask) and "
              "their four nearest database images (green):", "", "![Retrieval examples](retrieval_examples.png)", ""]
    (out / "robustness.json").write_text(json.dumps(robustness, indent=2) + "\n")
    return lines


def _figures(pred_q, pred_d, test, base, out: Path) -> None:
    from sklearn.manifold import TSNE

    embeddings = np.concatenate([pred_q.embeddings["expert"], pred_d.embeddings["expert"]])
    keep = ~np.isnan(embeddings).any(1)
    labels = {k: np.concatenate([task_labels(test)[k], task_labels(base)[k]]) for k in ("type", "size")}
    points = TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(embeddings[keep])
    figures.tsne_maps(points, labels["type"][keep], labels["size"][keep], out / "tsne.png")
    order = rankings(pred_q.embeddings["expert"], pred_d.embeddings["expert"], 4)
    picks = [int(np.flatnonzero(test.types == t)[i]) for t in range(3) for i in (0, 7)]
    rows = []
    for q in picks:
        row = [{"image": test.images[q], "mask": test.masks[q], "title": f"query: {TUMOR_TYPES[test.types[q]]}"}]
        for rank, d in enumerate(order[q]):
            row.append({"image": base.images[d], "mask": base.masks[d],
                        "title": f"#{rank + 1}: {TUMOR_TYPES[base.types[d]]}"})
        rows.append(row)
    figures.retrieval_examples(rows, out / "retrieval_examples.png")
