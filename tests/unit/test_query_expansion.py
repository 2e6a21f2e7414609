"""Average query expansion: the gateway's one-query form and evaluate's many-query form agree, missing
embeddings stay missing, and expansion pulls a query towards its neighbours' side."""

import numpy as np
import pytest

from shared.vectorstore.expansion import expanded_queries, expanded_query, unit_rows


def test_at_power_0_a_query_is_its_unit_vector_plus_its_neighbours_unit_vectors():
    assert expanded_query([3.0, 0.0], [[0.0, 2.0], [0.0, -5.0]], power=0) == pytest.approx([1.0, 0.0])
    assert expanded_query([3.0, 4.0], [[0.0, 10.0]], power=0) == pytest.approx([0.6, 1.8])


def test_neighbours_count_by_their_similarity_to_the_power():
    # cosine 0.8 -> weight 0.8 ** 10; an orthogonal or opposite neighbour counts nothing.
    assert expanded_query([3.0, 4.0], [[0.0, 10.0]]) == pytest.approx([0.6, 0.8 + 0.8 ** 10])
    assert expanded_query([3.0, 0.0], [[0.0, 2.0], [-1.0, 0.0]]) == pytest.approx([1.0, 0.0])


def test_one_query_refuses_vectors_of_different_lengths():
    with pytest.raises(ValueError, match="one length"):
        expanded_query([1.0, 0.0], [[1.0, 0.0, 0.0]])


def test_many_queries_match_the_one_query_form_with_the_nearest_rows():
    rng = np.random.default_rng(0)
    queries, database = rng.normal(size=(5, 8)), rng.normal(size=(40, 8))
    expanded = expanded_queries(queries, database, 3)
    for q, row in zip(queries, expanded):
        nearest = np.argsort(-(unit_rows(database) @ (q / np.linalg.norm(q))))[:3]
        assert row == pytest.approx(expanded_query(q, database[nearest]))
        assert expanded_queries(q[None], database, 3, power=2)[0] == pytest.approx(
            expanded_query(q, database[nearest], power=2))


def test_missing_embeddings_stay_missing_and_are_never_neighbours():
    database = np.array([[1.0, 0.0], [np.nan, np.nan], [0.0, 1.0]])
    queries = np.array([[1.0, 0.1], [np.nan, np.nan]])
    expanded = expanded_queries(queries, database, 2, power=0)
    assert np.isnan(expanded[1]).all()
    assert not np.isnan(expanded[0]).any()
    assert expanded[0] == pytest.approx(unit_rows(queries[:1])[0] + [1.0, 1.0])


def test_neighbours_pull_a_borderline_query_to_their_side():
    # Four database rows of one class near (1, 0.2); the query sits closer to a lone other-class row.
    database = np.array([[1.0, 0.25], [1.0, 0.3], [1.0, 0.2], [1.0, 0.35], [1.0, -0.3]])
    query = np.array([[1.0, -0.1]])
    before = np.argsort(-(unit_rows(database) @ unit_rows(query)[0]))[0]
    after = np.argsort(-(unit_rows(database) @ unit_rows(expanded_queries(query, database, 3))[0]))[0]
    assert before == 4 and after != 4


def test_at_least_one_neighbour_is_required():
    with pytest.raises(ValueError, match="at least 1"):
        expanded_queries(np.ones((1, 2)), np.ones((3, 2)), 0)


def test_the_gateway_leaves_expansion_off_unless_a_site_turns_it_on():
    """Off by default (speed); the setting the docs tell a site to use is the validated one."""
    from pathlib import Path

    from shared.config.programs import GatewaySection
    from shared.vectorstore.expansion import DEFAULT_NEIGHBOURS

    assert GatewaySection().query_expansion == 0
    assert GatewaySection(query_expansion=DEFAULT_NEIGHBOURS).query_expansion == DEFAULT_NEIGHBOURS
    docs = (Path(__file__).resolve().parents[2] / "docs" / "gateway.md").read_text(encoding="utf-8")
    assert f"TUMORSEARCH_GATEWAY__QUERY_EXPANSION={DEFAULT_NEIGHBOURS}" in docs
