"""Run a trained network over 2D images: the predicted mask (by the checkpoint's mask rule), the
automatic tumour box (largest connected component of the mask), and embeddings and task probabilities
for given or found boxes.

Also a diagnostic box, never used by the product: `forced` is the automatic box, except that an image
where nothing passes the threshold takes the region around its most likely pixel (p >= half that
maximum). It tells how much of the automatic protocol's loss comes from images where the model finds
nothing, as against from imperfect boxes; a real study without a tumour must be able to say so, so the
worker never forces a box (it keeps the checkpoint's mask rule alone)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from shared.model.device import autocast
from shared.model.mask_rule import MaskRule
from shared.model.network import PisovNet


@dataclass(frozen=True)
class Predictions:
    masks: np.ndarray               # (N, H, W) bool, predicted tumour
    auto_boxes: np.ndarray          # (N, 4) int, -1 where nothing was found
    embeddings: dict[str, np.ndarray]   # "expert"/"auto"/"forced" -> (N, D) float32 (NaN rows where no box)
    probabilities: dict[str, np.ndarray]  # task -> (N, classes), from the expert boxes (or auto if none)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The mask's largest connected component alone (all False when the mask is empty): the tumour the
    automatic box is drawn around."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask.astype(bool)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    return labels == int(np.argmax(sizes)) + 1


def largest_component_box(mask: np.ndarray, min_pixels: int = 1) -> tuple[int, ...] | None:
    """(starts..., stops...) of the largest component's bounding box; None when it has fewer than
    `min_pixels` pixels (or the mask is empty)."""
    component = largest_component(mask)
    if component.sum() < max(min_pixels, 1):
        return None
    slices = ndimage.find_objects(component.astype(np.int32))[0]
    return tuple(s.start for s in slices) + tuple(s.stop for s in slices)


def tumour_probability(model: PisovNet, x: torch.Tensor, features: tuple[torch.Tensor, ...],
                       flip_average: bool) -> torch.Tensor:
    """Mask probability (N, 1, *spatial) in fp32 of input `x` whose features are given; with flip averaging
    the mean with that of the mirrored input (mirrored back). 2D and 3D alike (the mirror is the last axis)."""
    probability = torch.sigmoid(model.segment(features).float())
    if flip_average:
        mirrored = model.segment(model.features(x.flip(-1))).flip(-1)
        probability = (probability + torch.sigmoid(mirrored.float())) / 2
    return probability


@torch.no_grad()
def forward(model: PisovNet, images: np.ndarray, device: torch.device, bf16: bool | None = None,
            rule: MaskRule | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(coarse maps in fp32, tumour probability (N, H, W)) of a batch of prepared 2D images: the network
    under autocast (`bf16` None: the model's own setting, else as this hardware suits; device.py), what
    follows in fp32.
    The one forward pass of evaluation and of the worker.
    With the rule's flip averaging (default: the model's rule) the probability is the mean of the image's
    and its mirror's (mirrored back); the coarse maps, and so the embeddings, are the image's own."""
    rule = rule or model.mask_rule
    x = torch.from_numpy(images)[:, None].to(device).contiguous(memory_format=torch.channels_last)
    with autocast(device, enabled=model.bf16 if bf16 is None else bf16):
        both = model.features(x)
        probability = tumour_probability(model, x, both, rule.flip_average)
    return both[0].float(), probability[:, 0]


@torch.no_grad()
def tumour_probabilities(model: PisovNet, images: np.ndarray, device: torch.device, rule: MaskRule,
                         batch_size: int = 64) -> np.ndarray:
    """(N, H, W) tumour probability of prepared 2D images, with the rule's flip averaging."""
    model.eval()
    parts = [forward(model, images[s:s + batch_size], device, rule=rule)[1].cpu().numpy()
             for s in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, *images.shape[1:]), np.float32)


@torch.no_grad()
def predict(model: PisovNet, images: np.ndarray, expert_boxes: np.ndarray | None, device: torch.device,
            batch_size: int = 64, bf16: bool | None = None, rule: MaskRule | None = None) -> Predictions:
    """Masks and automatic boxes by `rule` (default: the model's own, from its card)."""
    model.eval()
    rule = rule or model.mask_rule
    masks, autos, embeddings, probabilities = [], [], {"expert": [], "auto": [], "forced": []}, {}
    for start in range(0, len(images), batch_size):
        features, probability = forward(model, images[start:start + batch_size], device, bf16, rule)
        probability = probability.cpu().numpy()
        mask = probability > rule.threshold
        boxes = [largest_component_box(m) for m in mask]
        auto = np.array([b if b is not None else (-1, -1, -1, -1) for b in boxes])
        masks.append(mask)
        autos.append(auto)
        embeddings["auto"].append(_embed(model, features, auto))
        embeddings["forced"].append(_forced_embeddings(model, features, auto, probability, embeddings["auto"][-1]))
        chosen = auto if expert_boxes is None else expert_boxes[start:start + batch_size]
        if expert_boxes is not None:
            embeddings["expert"].append(_embed(model, features, chosen))
        for task, probs in _probabilities(model, features, chosen).items():
            probabilities.setdefault(task, []).append(probs)
    return Predictions(
        masks=np.concatenate(masks), auto_boxes=np.concatenate(autos),
        embeddings={k: np.concatenate(v) for k, v in embeddings.items() if v},
        probabilities={k: np.concatenate(v) for k, v in probabilities.items()})


def _forced_boxes(auto: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The automatic boxes, with the most likely region where nothing passed the threshold."""
    forced = auto.copy()
    for i in np.nonzero(auto[:, 0] < 0)[0]:
        box = largest_component_box(probability[i] >= probability[i].max() / 2)
        forced[i] = box if box is not None and probability[i].max() > 0 else (-1, -1, -1, -1)
    return forced


def _forced_embeddings(model: PisovNet, features: torch.Tensor, auto: np.ndarray, probability: np.ndarray,
                       auto_embeddings: np.ndarray) -> np.ndarray:
    """The automatic embeddings, plus those of the fallback boxes where the mask rule found nothing
    (only those rows are pooled again)."""
    forced = _forced_boxes(auto, probability)
    out = auto_embeddings.copy()
    missing = auto[:, 0] < 0
    if missing.any():
        out[missing] = _embed(model, features[torch.from_numpy(missing)], forced[missing])
    return out


def _embed(model: PisovNet, features: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
    valid = boxes[:, 0] >= 0
    out = np.full((len(boxes), model.embedding_size), np.nan, np.float32)
    if valid.any():
        _, emb = model.embed(features[torch.from_numpy(valid)], torch.from_numpy(boxes[valid]))
        out[valid] = emb.float().cpu().numpy()
    return out


def _probabilities(model: PisovNet, features: torch.Tensor, boxes: np.ndarray) -> dict[str, np.ndarray]:
    valid = boxes[:, 0] >= 0
    result = {}
    if not model.heads:
        return result
    pooled = None
    if valid.any():
        pooled, _ = model.embed(features[torch.from_numpy(valid)], torch.from_numpy(boxes[valid]))
    for key, head in model.heads.items():
        probs = np.full((len(boxes), head.out_features), np.nan, np.float32)
        if pooled is not None:
            probs[valid] = torch.softmax(head(pooled).float(), 1).cpu().numpy()
        result[key.removeprefix("task_")] = probs
    return result
