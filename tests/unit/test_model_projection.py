import numpy as np
import pytest

from shared.model.projection import apply_projection, fit_projection
from shared.model.retrieval import map_and_p10

pytestmark = pytest.mark.unit


def test_whitening_the_within_type_scatter_helps_when_a_noisy_direction_dominates():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    centres = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]) * 0.3
    noise = rng.normal(size=(600, 3)) * 0.1
    noise[:, 0] += rng.normal(size=600) * 2.0  # one direction varies a lot within every type
    x = centres[labels] + noise + 5.0
    w, b = fit_projection(x[:400], labels[:400])
    before, _, _ = map_and_p10(x[400:], labels[400:], x[:400], labels[:400])
    after, _, _ = map_and_p10(apply_projection(x[400:], w, b), labels[400:],
                              apply_projection(x[:400], w, b), labels[:400])
    assert after > before + 0.1


def test_projection_needs_two_types_and_ignores_missing_rows():
    x = np.random.default_rng(1).normal(size=(10, 4))
    with pytest.raises(ValueError, match="at least 2 types"):
        fit_projection(x, np.zeros(10, int))
    x[0] = np.nan
    w, b = fit_projection(x, np.arange(10) % 2)
    assert w.shape == (4, 4) and b.shape == (4,) and np.isfinite(w).all()
