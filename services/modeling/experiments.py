"""The runs of the paper's validation: which configurations, on which test folds.

Every run uses the recipe of one checkpoint (by default the shipped one, read from its model card) except
what its table varies; `epochs` is set for the whole validation (shorter than the recipe's when time is
short; the tables say so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.model.config import TrainConfig

ALL = ("segmentation", "type", "size", "horizontal", "vertical")


@dataclass(frozen=True)
class Run:
    name: str
    group: str
    label: str
    config: TrainConfig


def validation_runs(epochs: int, base: TrainConfig | None = None) -> list[Run]:
    base = replace(base or TrainConfig(), epochs=epochs, test_fold=5)
    runs = [Run(f"cv-fold{k}", "cv", f"test fold {k}", replace(base, test_fold=k)) for k in range(1, 6)]
    runs += [Run(f"size-{c}", "sizes", f"{c} channels", replace(base, channels=c)) for c in (16, 32, 64, 96)]
    tasks = {"seg": ("segmentation",), "type": ("type",), "type-seg": ("segmentation", "type"), "all": ALL}
    labels = {"seg": "segmentation only", "type": "type only", "type-seg": "type + segmentation",
              "all": "all tasks"}
    # The task ablation isolates the tasks: no metric-learning term, so only the tasks differ.
    runs += [Run(f"tasks-{k}", "tasks", labels[k], replace(base, tasks=v, metric_weight=0.0))
             for k, v in tasks.items()]
    runs += [
        Run("recipe-plain", "recipe", "all tasks, no augmentation, no metric term",
            replace(base, augment=False, metric_weight=0.0)),
        Run("recipe-augment", "recipe", "+ augmentation", replace(base, metric_weight=0.0)),
        Run("recipe-metric", "recipe", "+ supervised-contrastive term (shipped recipe)", base),
    ]
    return runs


def unique_runs(runs: list[Run]) -> dict[str, Run]:
    """Runs with the same configuration are trained once (e.g. the fold-5 CV run and size-64)."""
    seen: dict[tuple, str] = {}
    aliases: dict[str, Run] = {}
    for run in runs:
        key = tuple(sorted(run.config.to_json().items(), key=lambda kv: kv[0]).__repr__())
        aliases[run.name] = replace(run, name=seen.setdefault(key, run.name))
    return aliases
