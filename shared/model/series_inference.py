"""A 2D checkpoint over a DICOM series: every slice prepared exactly as a training image was (resampled
in-plane to the model's spacing, then normalised), the per-slice tumour probabilities, and the per-slice
coarse feature maps stacked into a volume so one RoiPool covers a tumour across slices.

Same arithmetic as `shared.model.inference.predict` (the network under autocast where the hardware runs
bf16 natively, device.py; fp32 for RoiPool and the heads), so a one-slice study embeds to what
`tumorsearch evaluate` computes offline for that image on the same machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared.model.inference import forward
from shared.model.network import STRIDE, PisovNet, roi_pool
from shared.model.preprocess import normalize_image, resize_to

PAD_VALUE = -1.0  # the normalised value of background
# The smallest field of view the worker shows the 2D network. It was trained on 250 mm frames; on the
# bare grid of a 125 mm field of view (64 px at 1.96 mm) the shipped mask head finds nothing. 200 mm is a
# common head field of view: 102 px at 1.96 mm, which the shipped head's input multiple of 16 rounds up to
# 112 px, where it finds the tumour in 14 of 15 such figshare slices (docs/model.md, "Small fields of view:
# the worker frames them"). Slices at least 200 mm wide are padded exactly as before.
MIN_FIELD_OF_VIEW_MM = 200.0


@dataclass(frozen=True)
class ModelGrid:
    """How a source slice maps onto the model's grid: model pixel (y, x) covers source pixels
    (y * scale[0] .. (y + 1) * scale[0], same for x)."""

    shape: tuple[int, int]          # model grid of one slice (before padding to the stride)
    padded: tuple[int, int]
    scale: tuple[float, float]      # source pixels per model pixel, rows and columns
    spacing_mm: float               # the model's in-plane spacing

    def to_source(self, y: float, x: float) -> tuple[float, float]:
        return y * self.scale[0], x * self.scale[1]


@dataclass(frozen=True)
class SeriesPrediction:
    probabilities: np.ndarray   # (K, h, w) float32 tumour probability on the model grid
    coarse: torch.Tensor        # (K, C, H/4, W/4) float32 backbone maps (padded grid)
    grid: ModelGrid


def model_grid(rows: int, cols: int, pixel_spacing_mm: tuple[float, float], model_spacing_mm: float,
               multiple: int = STRIDE, min_field_mm: float = 0.0) -> ModelGrid:
    """The slice grid at the model's spacing, padded at its end to `multiple` (the model's
    `input_multiple`: the network then sees background, as in training, rather than padding its own maps),
    and on each side to at least `min_field_mm` (the worker passes MIN_FIELD_OF_VIEW_MM)."""
    if min(pixel_spacing_mm) <= 0 or model_spacing_mm <= 0 or min_field_mm < 0:
        raise ValueError(f"spacing: expected positive millimetres (smallest field: zero or more), found pixel "
                         f"{pixel_spacing_mm}, model {model_spacing_mm}, smallest field {min_field_mm}")
    shape = tuple(max(STRIDE, int(round(n * s / model_spacing_mm)))
                  for n, s in zip((rows, cols), pixel_spacing_mm))
    if multiple <= 0 or multiple % STRIDE:
        raise ValueError(f"multiple: expected a positive multiple of {STRIDE}, found {multiple}")
    least = int(round(min_field_mm / model_spacing_mm))
    padded = tuple(-(-max(n, least) // multiple) * multiple for n in shape)
    scale = (rows / shape[0], cols / shape[1])
    return ModelGrid(shape, padded, scale, model_spacing_mm)  # type: ignore[arg-type]


def prepare_slices(volume: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """(K, H, W) float32 network input: each slice resized, normalised on its own, padded at the end."""
    out = np.full((volume.shape[0], *grid.padded), PAD_VALUE, np.float32)
    h, w = grid.shape
    for k, image in enumerate(volume):
        out[k, :h, :w] = normalize_image(resize_to(image, (h, w)))
    return out


@torch.no_grad()
def predict_series(model: PisovNet, prepared: np.ndarray, grid: ModelGrid, device: torch.device,
                   batch_size: int = 16, bf16: bool | None = None) -> SeriesPrediction:
    model.eval()
    probabilities, coarse = [], []
    h, w = grid.shape
    for start in range(0, len(prepared), batch_size):
        features, probability = forward(model, prepared[start:start + batch_size], device, bf16)
        probabilities.append(probability[:, :h, :w].cpu().numpy())
        coarse.append(features.cpu())
    return SeriesPrediction(np.concatenate(probabilities), torch.cat(coarse), grid)


@torch.no_grad()
def embed_box(model: PisovNet, coarse: torch.Tensor, box: tuple[int, int, int, int, int, int]
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(embedding, task -> class probabilities) for a box (k0, y0, x0, k1, y1, x1) on the model grid,
    end exclusive: the RoiPool of each slice's map under the box, max over the slices."""
    k0, y0, x0, k1, y1, x1 = (int(v) for v in box)
    if not (0 <= k0 < k1 <= coarse.shape[0]):
        raise ValueError(f"box: expected slices within 0..{coarse.shape[0]}, found {k0}..{k1}")
    boxes = torch.tensor([[y0, x0, y1, x1]] * (k1 - k0))
    pooled = roi_pool(coarse[k0:k1], boxes).amax(dim=0, keepdim=True)
    embedding = model.projection(pooled) if model.projection is not None else pooled
    probabilities = {key.removeprefix("task_"): torch.softmax(head(pooled), 1)[0].numpy()
                     for key, head in model.heads.items()}
    return embedding[0].numpy().astype(np.float32), probabilities
