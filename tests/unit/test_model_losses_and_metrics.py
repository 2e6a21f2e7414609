import numpy as np
import pytest
import torch

from shared.model.config import TrainConfig
from shared.model.losses import mask_loss, supervised_contrastive, task_loss
from shared.model.retrieval import dice_scores, knn_accuracy, map_and_p10
from shared.model.tasks import MISSING, derived_labels, mask_box, parse_tasks
from shared.model.training import mask_weights

pytestmark = pytest.mark.unit


def test_a_missing_label_adds_nothing_to_the_loss():
    logits = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, MISSING, 2, MISSING])
    full = task_loss(logits, labels)
    assert torch.isclose(full, torch.nn.functional.cross_entropy(logits[[0, 2]], labels[[0, 2]]))
    none = task_loss(logits, torch.full((4,), MISSING))
    none.backward()
    assert none.item() == 0 and logits.grad.abs().sum() == 0


def test_contrastive_loss_is_lower_when_same_labels_are_together():
    labels = torch.tensor([0, 0, 1, 1])
    together = torch.tensor([[1.0, 0], [1.0, 0.01], [0, 1.0], [0.01, 1.0]])
    mixed = torch.tensor([[1.0, 0], [0, 1.0], [1.0, 0.01], [0.01, 1.0]])
    assert supervised_contrastive(together, labels) < supervised_contrastive(mixed, labels)


def test_map_and_precision_at_10_on_a_known_ranking():
    db = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    db_labels = np.array([0, 1, 1, 0])
    query = np.array([[1.0, 0.0]])
    # ranking: 0 (rel), 1 (not), 3 (rel), 2 (not) -> AP = (1/1 + 2/3) / 2
    m, p10, ap = map_and_p10(query, np.array([0]), db, db_labels)
    assert m == pytest.approx((1 + 2 / 3) / 2)
    assert p10 == pytest.approx(2 / 4)


def test_a_query_without_embedding_counts_as_retrieving_nothing():
    db = np.array([[1.0, 0], [0, 1.0]])
    queries = np.array([[1.0, 0], [np.nan, np.nan]])
    m, _, ap = map_and_p10(queries, np.array([0, 0]), db, np.array([0, 1]))
    assert ap.tolist() == [1.0, 0.0] and m == 0.5


def test_knn_vote_and_dice():
    db = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0]])
    acc = knn_accuracy(np.array([[1.0, 0.05]]), np.array([1]), db, np.array([0, 1, 1]), classes=2, k_max=3)
    assert acc == [0.0, 0.0, 1.0]  # k=2 tie goes to the nearer neighbour (label 0)
    a = np.zeros((1, 4, 4), bool); a[0, :2] = True
    b = np.zeros((1, 4, 4), bool); b[0, 1:3] = True
    assert dice_scores(a, b)[0] == pytest.approx(0.5)


def test_labels_derived_from_a_mask():
    mask = np.zeros((100, 100), bool)
    mask[10:40, 60:90] = True  # 900 px at 1 mm: medium, right half, top half
    assert mask_box(mask) == (10, 60, 40, 90)
    assert derived_labels(mask, 1.0) == {"size": 1, "horizontal": 1, "vertical": 0}
    assert derived_labels(np.zeros((4, 4), bool), 1.0)["size"] == MISSING


def test_task_names_are_checked():
    assert parse_tasks("type,segmentation") == ("segmentation", "type")
    with pytest.raises(ValueError, match="tasks: expected"):
        parse_tasks("type,colour")


def test_mask_loss_weights_samples_by_tumour_type_and_defaults_to_the_plain_mean():
    torch.manual_seed(0)
    logits, target = torch.randn(3, 1, 8, 8), (torch.rand(3, 1, 8, 8) > 0.7).float()
    every = torch.ones(3, dtype=torch.bool)
    each = torch.stack([mask_loss(logits[i:i + 1], target[i:i + 1], every[:1]) for i in range(3)])
    assert torch.isclose(mask_loss(logits, target, every), each.mean(), atol=1e-6)
    weighted = mask_loss(logits, target, every, torch.tensor([1.0, 2.0, 1.0]))
    assert torch.isclose(weighted, (each[0] + 2 * each[1] + each[2]) / 4, atol=1e-6)

    config = TrainConfig(mask_type_weights=(1.0, 2.0, 1.0))
    types = torch.tensor([1, MISSING, 2, 0])
    assert mask_weights(config, types).tolist() == [2.0, 1.0, 1.0, 1.0]   # no type (empty mask): 1
    assert mask_weights(TrainConfig(), types) is None
    assert TrainConfig.from_json(config.to_json()).mask_type_weights == (1.0, 2.0, 1.0)


@pytest.mark.parametrize("weights", [(1.0, 2.0), (1.0, 0.0, 1.0)])
def test_mask_type_weights_are_checked(weights):
    with pytest.raises(ValueError, match="mask type weights: expected 3 positive weights"):
        TrainConfig(mask_type_weights=weights)
