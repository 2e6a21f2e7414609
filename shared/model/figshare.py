"""The figshare CE-MRI benchmark (Cheng et al.): 3064 T1c slices, masks, types and the authors' folds.

Loaded whole into memory (about 200 MB at 256 x 256) at the training size; folds are always the given
patient-wise ones, never an image split. Every image is resampled to the model's physical spacing, as
the worker resamples a DICOM slice: 3049 images share one field of view and simply become size x size,
while the 15 with half the pixel spacing become size/2 and are centred on a background frame, instead
of being blown up to twice the scale of every other tumour.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from shared.model.preprocess import normalize_image, resize_to
from shared.model.tasks import TUMOR_TYPES

SOURCE_SIZE = 256
SOURCE_SPACING_MM = 0.98  # the usual spacing on the PNGs' 256 grid (0.49 mm at the original 512)


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
    spacing = SOURCE_SPACING_MM * SOURCE_SIZE / size
    images = np.empty((len(rows), size, size), np.float32)
    masks = np.empty((len(rows), size, size), bool)
    for i, row in enumerate(tqdm(rows, desc="loading figshare", disable=not progress, leave=False)):
        image = np.asarray(Image.open(root / "images" / f"{row['image_id']}.png").convert("L"))
        mask = np.asarray(Image.open(root / "masks" / f"{row['image_id']}.png").convert("L")) > 127
        images[i], masks[i] = at_model_spacing(image, mask, float(row["pixel_spacing_mm"]), spacing, size)
    return Slices(
        ids=np.array([int(r["image_id"]) for r in rows]),
        images=images, masks=masks,
        types=np.array([TUMOR_TYPES.index(r["label"]) for r in rows]),
        folds=np.array([int(r["fold"]) for r in rows]),
        spacing_mm=np.full(len(rows), spacing),
    )


def at_model_spacing(image: np.ndarray, mask: np.ndarray, image_spacing_mm: float, model_spacing_mm: float,
                     size: int) -> tuple[np.ndarray, np.ndarray]:
    """(normalised image, mask), size x size at the model's spacing: resampled and normalised as the
    worker does a slice, then centre-cropped or padded with background (-1, no tumour) to the grid."""
    pixels = max(1, int(round(image.shape[0] * image_spacing_mm / model_spacing_mm)))
    scaled = normalize_image(resize_to(image, (pixels, pixels)))
    scaled_mask = resize_to(mask.astype(np.float32), (pixels, pixels)) >= 0.5
    return _centre(scaled, size, -1.0), _centre(scaled_mask, size, False)


def _centre(array: np.ndarray, size: int, background) -> np.ndarray:
    out = np.full((size, size), background, array.dtype)
    n = array.shape[0]
    src, dst = max(0, (n - size) // 2), max(0, (size - n) // 2)
    span = min(n, size)
    out[dst:dst + span, dst:dst + span] = array[src:src + span, src:src + span]
    return out
