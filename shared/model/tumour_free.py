"""What a mask rule costs where there is no tumour: the figshare benchmark cannot say, every one of its
images has one. Real labelled volumes can: their slices well away from any lesion voxel (at least
MARGIN_SLICES) that show brain are run through the 2D model slice by slice, prepared as the worker
prepares them, and a slice counts as a false positive when the rule finds a component of at least
MIN_AREA_MM2 in it. Slices holding lesion voxels count the other way (a finding is wanted there).

A lesion label may miss abnormal tissue (the TCGA labels mark the enhancing tumour only), so a "false
positive" can be unlabelled pathology: read the counts as an upper bound, and compare rules with them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from shared.model.figshare import Slices
from shared.model.healthy_mirror import mirror_healthy_halves
from shared.model.inference import largest_component_box, tumour_probabilities
from shared.model.mask_rule import MaskRule
from shared.model.network import STRIDE, PisovNet
from shared.model.series_inference import MIN_FIELD_OF_VIEW_MM, ModelGrid, model_grid, prepare_slices
from shared.model.volumes import read_volume, reorient

# The labelled real volumes of the shared data folder (its README), relative to that folder.
SHARED_VOLUMES = (("volumes/tcga-gbm-t1c/brain1_image.nrrd", "volumes/tcga-gbm-t1c/brain1_label.nrrd"),
                  ("volumes/tcga-gbm-t1c/brain2_image.nrrd", "volumes/tcga-gbm-t1c/brain2_label.nrrd"),
                  ("volumes/brats-met-00110/t1c.nii.gz", "volumes/brats-met-00110/t1c_pseudo_seg.nii.gz"))
MARGIN_SLICES = 2
MIN_AREA_MM2 = 100.0
BRAIN_SHARE = 0.15   # share of a slice brighter than a tenth of the volume's 99th percentile: "shows brain"


@dataclass(frozen=True)
class CheckVolume:
    prepared: np.ndarray        # (K, H, W) network input, one axial slice each
    grid: ModelGrid
    tumour_free: np.ndarray     # (K,) bool: brain, and no lesion voxel within MARGIN_SLICES
    lesion: np.ndarray          # (K,) bool: the slice holds lesion voxels


def load_check_volume(image: Path, mask: Path, spacing_mm: float, multiple: int = STRIDE) -> CheckVolume:
    """`multiple`: the checking model's `input_multiple`, so its slices are padded as the worker pads them."""
    data, affine = read_volume(image)
    labels, label_affine = read_volume(mask)
    if labels.shape != data.shape:
        raise ValueError(f"{mask}: expected the image's grid {data.shape}, found {labels.shape}")
    data, spacing = reorient(data, affine)
    data = np.ascontiguousarray(data, dtype=np.float32)  # reorienting may leave negative strides
    labels, _ = reorient(labels, label_affine)
    lesion = (labels > 0).any((1, 2))
    near = ndimage.binary_dilation(lesion, iterations=MARGIN_SLICES)
    bright = data > 0.1 * np.percentile(data, 99)
    brain = bright.mean((1, 2)) > BRAIN_SHARE
    grid = model_grid(data.shape[1], data.shape[2], (spacing[1], spacing[2]), spacing_mm, multiple,
                      MIN_FIELD_OF_VIEW_MM)
    return CheckVolume(prepare_slices(data, grid), grid, brain & ~near, lesion)


def slices_with_a_finding(model: PisovNet, volume: CheckVolume, rule: MaskRule, device: torch.device) -> np.ndarray:
    """(K,) bool: the rule finds a component of at least MIN_AREA_MM2 on the slice."""
    return _findings(_probability(model, volume, rule, device), rule.threshold, volume.grid.spacing_mm)


def _probability(model: PisovNet, volume: CheckVolume, rule: MaskRule, device: torch.device) -> np.ndarray:
    h, w = volume.grid.shape
    return tumour_probabilities(model, volume.prepared, device, rule, batch_size=16)[:, :h, :w]


def _findings(probability: np.ndarray, threshold: float, spacing_mm) -> np.ndarray:
    """(K,) bool: a component of at least MIN_AREA_MM2 above `threshold` on each slice; `spacing_mm` is one
    pixel spacing for all slices or one per slice."""
    spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (len(probability),))
    return np.array([largest_component_box(p > threshold, math.ceil(MIN_AREA_MM2 / s ** 2)) is not None
                     for p, s in zip(probability, spacing)], dtype=bool)


def score_volumes(model: PisovNet, volumes: list[CheckVolume], rules: list[MaskRule], device: torch.device
                  ) -> list[dict]:
    # The network runs once per volume and flip setting; the thresholds only cut its probabilities.
    probabilities = {(i, flip): _probability(model, v, MaskRule(flip_average=flip), device)
                     for i, v in enumerate(volumes) for flip in {r.flip_average for r in rules}}
    rows = []
    for rule in rules:
        found = [_findings(probabilities[i, rule.flip_average], rule.threshold, v.grid.spacing_mm)
                 for i, v in enumerate(volumes)]
        rows.append({"tumour_free_slices": int(sum(v.tumour_free.sum() for v in volumes)),
                     "false_positive_slices": int(sum((f & v.tumour_free).sum() for f, v in zip(found, volumes))),
                     "lesion_slices": int(sum(v.lesion.sum() for v in volumes)),
                     "lesion_slices_found": int(sum((f & v.lesion).sum() for f, v in zip(found, volumes)))})
    return rows


def mirrored_tumour_free(test: Slices) -> tuple[np.ndarray, np.ndarray]:
    """(images (M, H, W), spacing (M,)) of the test slices that can be made tumour-free by mirroring their
    healthy half over the tumour (healthy_mirror.py): unseen patients' brains with the tumour taken out."""
    images = torch.from_numpy(test.images)[:, None].clone()
    masks = torch.from_numpy(test.masks)[:, None].float()
    mirrored = mirror_healthy_halves(images, masks, len(images))
    return images[mirrored][:, 0].numpy(), test.spacing_mm[mirrored.numpy()]


def score_mirrored(model: PisovNet, test: Slices, rules: list[MaskRule], device: torch.device) -> list[dict]:
    """Per rule: on how many mirrored tumour-free slices it finds a component of at least MIN_AREA_MM2."""
    images, spacing = mirrored_tumour_free(test)
    # The network runs once per flip setting; the thresholds only cut its probabilities.
    probabilities = {flip: tumour_probabilities(model, images, device, MaskRule(flip_average=flip))
                     for flip in {r.flip_average for r in rules}}
    rows = []
    for rule in rules:
        found = int(_findings(probabilities[rule.flip_average], rule.threshold, spacing).sum())
        rows.append({"mirrored_slices": len(images), "mirrored_with_finding": found,
                     "mirrored_share": round(found / max(1, len(images)), 4)})
    return rows


def mirrored_slice_findings(model: PisovNet, test: Slices, device: torch.device) -> dict:
    """`score_mirrored` with the model's own rule, as `tumorsearch evaluate` reports it."""
    row = score_mirrored(model, test, [model.mask_rule], device)[0]
    return {"slices": row["mirrored_slices"], "with_finding": row["mirrored_with_finding"],
            "share": row["mirrored_share"]}
