"""The metric term's cross-batch memory: what it keeps, how the loss uses it, and its validation."""

import pytest
import torch
from torch.nn import functional as F

from shared.model.config import TrainConfig
from shared.model.embedding_memory import EmbeddingMemory
from shared.model.losses import supervised_contrastive
from shared.model.tasks import MISSING


def test_the_memory_keeps_the_latest_known_embeddings_normalised():
    memory = EmbeddingMemory(4)
    for step in range(3):
        embeddings = torch.full((3, 2), float(step + 1), requires_grad=True)
        memory.push(embeddings, torch.tensor([step, MISSING, step]))
    assert len(memory) == 4, "two known labels per push, the oldest pair dropped"
    assert memory.labels.tolist() == [1, 1, 2, 2]
    torch.testing.assert_close(memory.embeddings.norm(dim=1), torch.ones(4))
    assert not memory.embeddings.requires_grad


def test_an_empty_memory_leaves_the_loss_unchanged():
    torch.manual_seed(0)
    z, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    empty = EmbeddingMemory(5).contents()
    torch.testing.assert_close(supervised_contrastive(z, labels, memory=empty), supervised_contrastive(z, labels))


def test_memory_gives_positives_a_batch_lacks_and_no_gradient_of_its_own():
    torch.manual_seed(0)
    z = torch.randn(2, 8, requires_grad=True)
    labels = torch.tensor([0, 1])
    assert float(supervised_contrastive(z, labels).detach()) == 0, "no two tumours of one type: nothing to pull"
    memory = EmbeddingMemory(8)
    memory.push(torch.randn(4, 8), torch.tensor([0, 1, 2, 0]))
    loss = supervised_contrastive(z, labels, memory=memory.contents())
    loss.backward()
    assert float(loss.detach()) > 0 and float(z.grad.abs().sum()) > 0


def test_memory_loss_is_the_batch_anchors_share_of_the_joint_loss():
    """Batch anchors compared with batch + memory: the same per-anchor terms as one big batch."""
    torch.manual_seed(1)
    batch, earlier = torch.randn(4, 8), torch.randn(4, 8)
    labels, earlier_labels = torch.tensor([0, 1, 0, 2]), torch.tensor([1, 0, 2, 2])
    memory = (F.normalize(earlier, dim=1), earlier_labels)
    with_memory = supervised_contrastive(batch, labels, memory=memory)
    # by hand, anchors 0..3 of the joint batch
    z = F.normalize(torch.cat([batch, earlier]), dim=1)
    all_labels = torch.cat([labels, earlier_labels])
    logits = (z[:4] @ z.T / 0.1).masked_fill(torch.eye(4, 8, dtype=torch.bool), -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == all_labels[None]) & ~torch.eye(4, 8, dtype=torch.bool)
    expected = -((log_prob * positives).sum(1) / positives.sum(1)).mean()
    torch.testing.assert_close(with_memory, expected)


def test_a_saved_memory_restores_only_into_one_of_its_size():
    memory = EmbeddingMemory(3)
    memory.push(torch.randn(2, 4), torch.tensor([0, 1]))
    restored = EmbeddingMemory(3)
    restored.load_state_dict(memory.state_dict())
    assert torch.equal(restored.embeddings, memory.embeddings) and restored.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="expected a saved memory of size 5, found 3"):
        EmbeddingMemory(5).load_state_dict(memory.state_dict())


def test_the_config_refuses_a_memory_without_a_metric_term():
    with pytest.raises(ValueError, match="metric memory: expected 0, or a positive size with a metric weight"):
        TrainConfig(metric_memory=16, metric_weight=0)
    with pytest.raises(ValueError, match="metric memory"):
        TrainConfig(metric_memory=-1)
    with pytest.raises(ValueError, match="expected a size of at least 1, found 0"):
        EmbeddingMemory(0)
