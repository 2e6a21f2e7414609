"""The facade's filters mean the same thing in both engines' terms."""

from __future__ import annotations

import qdrant_edge as qe
import pytest
from qdrant_client import models

from shared.vectorstore import filters
from shared.vectorstore.base import CollectionSpec, Filter, Hit, Match, MatchAny, PointRecord, Range

pytestmark = pytest.mark.unit


def test_empty_or_missing_filter_is_none_for_both_engines():
    assert filters.to_qdrant(None) is None and filters.to_qdrant(Filter()) is None
    assert filters.to_edge(None) is None and filters.to_edge(Filter()) is None


def test_qdrant_translation_of_every_condition():
    flt = Filter(must=(Match("tumor_type", "glioma"), MatchAny("fold", (1, 2)), Range("size_mm3", gte=1.5)),
                 must_not=(Match("fold", 5),))
    out = filters.to_qdrant(flt)
    assert out == models.Filter(
        must=[models.FieldCondition(key="tumor_type", match=models.MatchValue(value="glioma")),
              models.FieldCondition(key="fold", match=models.MatchAny(any=[1, 2])),
              models.FieldCondition(key="size_mm3", range=models.Range(gte=1.5, lte=None))],
        must_not=[models.FieldCondition(key="fold", match=models.MatchValue(value=5))])


def test_edge_translation_of_every_condition():
    flt = Filter(must=(Match("tumor_type", "glioma"), MatchAny("hemisphere", ("left", "right")),
                       Range("size_mm3", lte=9.0)), must_not=(Match("fold", 5),))
    out = filters.to_edge(flt)
    assert isinstance(out, qe.Filter)
    must, must_not = out.must, out.must_not
    assert [c.key for c in must] == ["tumor_type", "hemisphere", "size_mm3"]
    assert must[0].match.value == "glioma"
    assert list(must[1].match.value) == ["left", "right"]
    assert must[2].range.lte == 9.0 and must[2].range.gte is None
    assert must_not[0].key == "fold" and must_not[0].match.value == 5


def test_float_match_becomes_a_one_point_range_in_both_engines():
    assert filters.qdrant_condition(Match("size_mm3", 2.5)).range == models.Range(gte=2.5, lte=2.5)
    edge = filters.edge_condition(Match("size_mm3", 2.5))
    assert (edge.range.gte, edge.range.lte) == (2.5, 2.5)


@pytest.mark.parametrize("values", [(), (1, "a"), (1.5,), (True, False)])
def test_match_any_needs_all_strings_or_all_integers(values):
    with pytest.raises(ValueError, match="expected a non-empty list of all strings or all integers"):
        filters.to_qdrant(Filter(must=(MatchAny("fold", values),)))
    with pytest.raises(ValueError, match="expected a non-empty list"):
        filters.to_edge(Filter(must=(MatchAny("fold", values),)))


def test_range_without_bounds_is_refused():
    with pytest.raises(ValueError, match="expected at least one bound"):
        filters.to_edge(Filter(must=(Range("size_mm3"),)))


def test_unknown_condition_is_named():
    with pytest.raises(ValueError, match="expected Match, MatchAny or Range, found str"):
        filters.to_qdrant(Filter(must=("fold == 1",)))  # type: ignore[arg-type]


def test_point_ids_are_canonical_uuid_strings():
    assert filters.point_id("5F1C1E7A3B8E4C2E9A556D1F4B2A9C01") == "5f1c1e7a-3b8e-4c2e-9a55-6d1f4b2a9c01"
    with pytest.raises(ValueError, match="expected a UUID string, found 'tumor-1'"):
        filters.point_id("tumor-1")


def test_vectors_are_checked_for_size():
    assert filters.vector_list([1, 2], 2) == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"expected 3 numbers, found shape \(2,\)"):
        filters.vector_list([1, 2], 3)


def test_euclid_distances_become_similarities_and_ties_break_by_id():
    assert filters.similarity(2.0, "Euclid") == -2.0 and filters.similarity(0.5, "Cosine") == 0.5
    hits = filters.ranked([Hit("b", 1.0, {}), Hit("a", 1.0, {}), Hit("c", 2.0, {})])
    assert [h.id for h in hits] == ["c", "a", "b"]


def test_retrieve_order_follows_the_question():
    records = [PointRecord("a", [0.0], {}), PointRecord("b", [1.0], {})]
    assert [r.id for r in filters.in_asked_order(records, ["b", "x", "a"])] == ["b", "a"]


def test_specs_and_names_are_checked():
    with pytest.raises(ValueError, match="collection name"):
        filters.check_collection_name("../etc")
    with pytest.raises(ValueError, match="distance expected one of"):
        filters.check_spec(CollectionSpec("c", "roi", 4, "Manhattan"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exists with vector 'roi' of size 8 \\(Cosine\\); expected vector 'roi' "
                                         "of size 4"):
        filters.refuse_mismatch(CollectionSpec("c", "roi", 4), "roi", 8, "Cosine")


def test_empty_delete_filter_is_refused():
    with pytest.raises(ValueError, match="refusing to touch every point"):
        filters.require_conditions(Filter(), "delete from 'c'")


def test_payloads_are_stored_as_json_with_15_significant_digits():
    payload = {"size_mm3": 912.7555772777217, "centroid_mm": (1.0, 2.5, 28.319671145462966), "fold": 3, "t": "g"}
    assert filters.json_payload(payload) == {"size_mm3": 912.755577277722, "centroid_mm": [1.0, 2.5, 28.319671145463],
                                             "fold": 3, "t": "g"}


def test_match_any_of_one_value_is_sent_as_an_equality():
    # The engine evaluates an equality faster than "any of" one value; the result is the same.
    one, two = MatchAny("tumor_type", ("glioma",)), MatchAny("tumor_type", ("glioma", "pituitary"))
    assert filters.qdrant_condition(one).match == models.MatchValue(value="glioma")
    assert filters.qdrant_condition(two).match == models.MatchAny(any=["glioma", "pituitary"])
    assert type(filters.edge_condition(one).match).__name__ == "MatchValue"
    assert type(filters.edge_condition(two).match).__name__ == "MatchAny"
