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
    """A first-in first-out store of at most `size` (unit embedding, label) pairs."""

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
        fresh = F.normalize(embeddings[known].detach().float(), dim=1).cpu()
        if len(self) == 0:
            self.embeddings = fresh[:0]
        self.embeddings = torch.cat([self.embeddings, fresh])[-self.size:]
        self.labels = torch.cat([self.labels, labels[known].detach().cpu()])[-self.size:]

    def contents(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embeddings.to(device), self.labels.to(device)

    def state_dict(self) -> dict:
        return {"size": self.size, "embeddings": self.embeddings.clone(), "labels": self.labels.clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"embedding memory: expected a saved memory of size {self.size}, found {state['size']}")
        self.embeddings, self.labels = state["embeddings"], state["labels"]
