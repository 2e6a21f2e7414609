"""PNG figures of the validation report (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from shared.model.tasks import SIZE_NAMES, TUMOR_TYPES  # noqa: E402

COLOURS = ("tab:blue", "tab:red", "tab:green")


def knn_curves(knn: dict[str, list[float]], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for task, values in knn.items():
        ax.plot(range(1, len(values) + 1), values, label=task)
    ax.set(xlabel="k (neighbours)", ylabel="KNN accuracy", title=title, ylim=(0.4, 1.0))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tsne_maps(points: np.ndarray, types: np.ndarray, sizes: np.ndarray, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for index, name in enumerate(TUMOR_TYPES):
        keep = types == index
        axes[0].scatter(points[keep, 0], points[keep, 1], s=4, c=COLOURS[index], label=name)
    axes[0].set_title("t-SNE of embeddings, by tumour type")
    axes[0].legend(markerscale=3)
    for index, name in enumerate(SIZE_NAMES):
        keep = sizes == index
        axes[1].scatter(points[keep, 0], points[keep, 1], s=4, c=COLOURS[index], label=name)
    axes[1].set_title("the same map, by tumour size bin")
    axes[1].legend(markerscale=3)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def retrieval_examples(rows: list[list[dict]], path: Path) -> None:
    """rows: for each query, [query, hit1..hit4], each {"image", "mask", "title"}."""
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(2.4 * len(rows[0]), 2.5 * len(rows)))
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            ax = axes[r, c]
            ax.imshow(cell["image"], cmap="gray")
            ax.contour(cell["mask"].astype(float), levels=[0.5], colors="yellow" if c == 0 else "lime",
                       linewidths=0.8)
            ax.set_title(cell["title"], fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)

