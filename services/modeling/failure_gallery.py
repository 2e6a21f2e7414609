"""A PNG of a test fold's failed segmentations (Dice < 0.1), so a reader can see what the model missed
and what it drew instead: each image with the expert's outline (green) and the model's (red)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from shared.model.dice_report import FAILURE_KINDS  # noqa: E402

PANEL_INCHES = 1.6
_COLOURS = [(g, g, g) for g in range(0, 256, 4)] + [(0, 255, 0), (255, 0, 0)]   # 64 greys, both outlines
_PALETTE = Image.new("P", (1, 1))
_PALETTE.putpalette([v for rgb in _COLOURS for v in rgb] + [0, 0, 0] * (256 - len(_COLOURS)))


def failure_gallery(images: np.ndarray, expert: np.ndarray, predicted: np.ndarray, ids: np.ndarray,
                    failures: list[dict], path: Path, columns: int = 10) -> int:
    """Draw one panel per row of `failures` (from `shared.model.dice_report.failure_list`), grouped by
    kind, and write `path`; returns the number of panels. `ids` maps rows to image indices."""
    if not failures:
        raise ValueError("expected at least one failed image to draw; found none")
    index = {int(image_id): k for k, image_id in enumerate(ids)}
    missing = [row["image_id"] for row in failures if row["image_id"] not in index]
    if missing:
        raise ValueError(f"expected every failed image among the given ids; missing {missing[:5]}")
    ordered = sorted(failures, key=lambda row: (FAILURE_KINDS.index(row["kind"]), row["image_id"]))
    columns = min(columns, len(ordered))
    rows = math.ceil(len(ordered) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES * columns, (PANEL_INCHES + 0.25) * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, ordered):
        k = index[row["image_id"]]
        ax.imshow(images[k], cmap="gray")
        _outline(ax, expert[k], "#00ff00")
        _outline(ax, predicted[k], "#ff0000")
        ax.set_title(f"{row['image_id']} {row['type'][:3]}, {row['kind']}\n"
                     f"peak inside {row['peak_probability_inside']:.2f}", fontsize=6)
    fig.suptitle("Failed segmentations (Dice < 0.1): expert green, model red", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90)
    plt.close(fig)
    # Grey images with two outline colours need no 24-bit colour: a fixed palette of 64 greys and the two
    # outline colours keeps the PNG a third the size without washing the outlines out.
    Image.open(buffer).convert("RGB").quantize(palette=_PALETTE, dither=Image.Dither.NONE).save(path, optimize=True)
    return len(ordered)


def _outline(ax, mask: np.ndarray, colour: str) -> None:
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=0.8)
