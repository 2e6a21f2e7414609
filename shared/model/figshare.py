"""The figshare CE-MRI benchmark (Cheng et al.): 3064 T1c slices, masks, types and the authors' folds.

Loaded whole into memory (about 200 MB at 256 x 256) at the training size; folds are always the given
patient-wise ones, never an image split.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from shared.model.preprocess import normalize_image, resize_image, resize_mask
from shared.model.tasks import TUMOR_TYPES

SOURCE_SIZE = 256


@dataclass(frozen=True)
class Slices:
    ids: np.ndarray          # (N,) image ids of the set
    images: np.ndarray       # (N, S, S) float32, normalised
    masks: np.ndarray        # (N, S, S) bool, expert masks
    types: np.ndarray        # (N,) index into TUMOR_TYPES
    folds: np.ndarray        # (N,) 1..5
    spacing_mm: np.ndarray   # (N,) in-plane spacing at size S

    def select(self, keep: np.ndarray) -> "Slices":
        return Slices(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    def folds_in(self, folds) -> "Slices":
        return self.select(np.isin(self.folds, list(folds)))

    def __len__(self) -> int:
        return len(self.ids)


def load_figshare(root: Path, size: int = SOURCE_SIZE, limit: int | None = None, progress: bool = True) -> Slices:
    root = Path(root)
    labels = root / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"figshare set: expected {labels} (see ../shared/data/README.md), found nothing")
    with labels.open() as handle:
        rows = list(csv.DictReader(handle))[:limit]
    images = np.empty((len(rows), size, size), np.float32)
    masks = np.empty((len(rows), size, size), bool)
    for i, row in enumerate(tqdm(rows, desc="loading figshare", disable=not progress, leave=False)):
        image = np.asarray(Image.open(root / "images" / f"{row['image_id']}.png").convert("L"))
        mask = np.asarray(Image.open(root / "masks" / f"{row['image_id']}.png").convert("L")) > 127
        images[i] = normalize_image(resize_image(image, size))
        masks[i] = resize_mask(mask, size)
    return Slices(
        ids=np.array([int(r["image_id"]) for r in rows]),
        images=images, masks=masks,
        types=np.array([TUMOR_TYPES.index(r["label"]) for r in rows]),
        folds=np.array([int(r["fold"]) for r in rows]),
        spacing_mm=np.array([float(r["pixel_spacing_mm"]) * SOURCE_SIZE / size for r in rows]),
    )
