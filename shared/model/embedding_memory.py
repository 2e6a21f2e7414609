"""A memory of recent embeddings for the metric term (cross-batch memory, Wang et al. 2020).

The supervised-contrastive term compares each embedding with the others in its batch: a batch of 8
gives each anchor 7 others where the batch of 32 gave 31. Keeping the last N tumour embeddings of earlier
batches (normalised, detached, with their type) lets a small batch's anchors be compared with as many
candidates as a large batch's, while the mask loss keeps the small batch's more frequent steps."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from shared.model.tasks import MISSING


class EmbeddingMemory:
    """A first-in first-out store of at most `size` (unit embedding, label) pairs, kept on the device the
    embeddings come from, so the loss reads them where it runs."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"embedding memory: expected a size of at least 1, found {size}")
        self.size = size
        self.embeddings = torch.empty(0)
        self.labels = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def push(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Adds the batch's embeddings whose label is known, dropping the oldest beyond `size`."""
        known = labels != MISSING
        fresh, fresh_labels = F.normalize(embeddings[known].detach().float(), dim=1), labels[known].detach()
        if len(self):
            fresh, fresh_labels = torch.cat([self.embeddings, fresh]), torch.cat([self.labels, fresh_labels])
        self.embeddings, self.labels = fresh[-self.size:], fresh_labels[-self.size:]

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embeddings, self.labels

    def state_dict(self) -> dict:
        return {"size": self.size, "embeddings": self.embeddings.clone(), "labels": self.labels.clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"embedding memory: expected a saved memory of size {self.size}, found {state['size']}")
        self.embeddings, self.labels = state["embeddings"], state["labels"]
