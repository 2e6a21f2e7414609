"""Losses: Dice + binary cross-entropy for the mask, cross-entropy per task with missing labels left
out (the paper's rule), and an optional supervised-contrastive term on the embedding."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from shared.model.tasks import MISSING


def mask_loss(logits: torch.Tensor, target: torch.Tensor, has_mask: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """BCE + soft Dice over the samples that have a mask, averaged with per-sample `weights` (default
    all 1); 0 when none has."""
    if not bool(has_mask.any()):
        return logits.sum() * 0
    logits, target = logits[has_mask].float().flatten(1), target[has_mask].flatten(1)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)
    probs = torch.sigmoid(logits)
    dice = 1 - (2 * (probs * target).sum(1) + 1) / (probs.sum(1) + target.sum(1) + 1)
    if weights is None:
        return (bce + dice).mean()
    weights = weights[has_mask].float()
    return ((bce + dice) * weights).sum() / weights.sum()


def coarse_mask_loss(level_logits: list[torch.Tensor], target: torch.Tensor, has_mask: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """Deep supervision: the mean over levels of `mask_loss` of each coarser logit map against the mask
    average-pooled to its grid (the share of each cell that is tumour, a soft target)."""
    pool = F.adaptive_avg_pool2d if target.dim() == 4 else F.adaptive_avg_pool3d
    losses = [mask_loss(logits, pool(target, logits.shape[2:]), has_mask, weights) for logits in level_logits]
    return torch.stack(losses).mean()


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over samples whose label is known; a batch with none adds exactly nothing."""
    known = labels != MISSING
    if not bool(known.any()):
        return logits.sum() * 0
    return F.cross_entropy(logits[known].float(), labels[known])


def supervised_contrastive(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1,
                           memory: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Khosla et al. 2020: pull same-label embeddings together, push others apart (cosine geometry,
    the geometry retrieval ranks by). `memory` (unit embeddings, labels) from earlier batches adds
    candidates that each anchor is compared with but that get no gradient."""
    known = labels != MISSING
    z = F.normalize(embeddings[known].float(), dim=1)
    labels = labels[known]
    candidates, candidate_labels = z, labels
    if memory is not None and len(memory[1]):
        candidates, candidate_labels = torch.cat([z, memory[0]]), torch.cat([labels, memory[1]])
    if z.shape[0] < 1 or candidates.shape[0] < 2:
        return embeddings.sum() * 0
    logits = z @ candidates.T / temperature
    self_mask = torch.eye(len(z), len(candidates), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, -1e9)
    positives = (labels[:, None] == candidate_labels[None, :]) & ~self_mask
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    has_positive = positives.any(1)
    if not bool(has_positive.any()):
        return embeddings.sum() * 0
    mean_log_prob = (log_prob * positives).sum(1)[has_positive] / positives.sum(1)[has_positive]
    return -mean_log_prob.mean()
