"""The tasks the network learns, and the labels derived from a tumour mask (size, location).

Derived labels are the paper's "measurable criteria": they need no annotation beyond the mask, and
they are what the embedding should also encode (similar size, same place). A label that cannot be
derived (no mask) is MISSING, and that task then adds nothing to the loss for that sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MISSING = -1

TUMOR_TYPES = ("meningioma", "glioma", "pituitary")
SIZE_BINS_MM2 = (500.0, 1200.0)  # about the tertiles of the figshare set's tumour areas
SIZE_NAMES = ("small", "medium", "large")
HORIZONTAL = ("image_left", "image_right")
VERTICAL = ("image_top", "image_bottom")


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    weight: float = 1.0


CLASSIFICATION_TASKS = {
    "type": Task("type", TUMOR_TYPES),
    "size": Task("size", SIZE_NAMES, 0.5),
    "horizontal": Task("horizontal", HORIZONTAL, 0.5),
    "vertical": Task("vertical", VERTICAL, 0.5),
}
ALL_TASKS = ("segmentation", *CLASSIFICATION_TASKS)


def parse_tasks(text: str) -> tuple[str, ...]:
    """"segmentation,type" -> the tasks in canonical order; unknown names are an error."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(set(names) - set(ALL_TASKS))
    if unknown or not names:
        raise ValueError(f"tasks: expected a comma-separated subset of {', '.join(ALL_TASKS)}, found {text!r}")
    return tuple(n for n in ALL_TASKS if n in names)


def mask_box(mask: np.ndarray) -> tuple[int, ...] | None:
    """(start..., end...) of the mask's bounding box, end exclusive; None for an empty mask."""
    where = np.nonzero(mask)
    if len(where[0]) == 0:
        return None
    return tuple(int(w.min()) for w in where) + tuple(int(w.max()) + 1 for w in where)


def derived_labels(mask: np.ndarray, spacing_mm: float) -> dict[str, int]:
    """Size bin and centroid position of a 2D mask (image coordinates: the plane is not recorded)."""
    if not mask.any():
        return {"size": MISSING, "horizontal": MISSING, "vertical": MISSING}
    area = float(mask.sum()) * spacing_mm * spacing_mm
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return {
        "size": int(np.searchsorted(SIZE_BINS_MM2, area, side="right")),
        "horizontal": int(cols.mean() >= width / 2),
        "vertical": int(rows.mean() >= height / 2),
    }
