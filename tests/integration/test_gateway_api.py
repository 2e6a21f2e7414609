"""The gateway's API against a real index (the embedded vector store, real Redis, tumours the worker's
pipeline found in real figshare images): answers, filters, why-matched, and every bad input's problem."""

from __future__ import annotations

import json
import math

import pytest
import redis

from services.gateway.app import create_app
from shared.vectorstore.edge_backend import EdgeStore
from support.gateway_index import IMAGES, build_index, local_deps
from support.servers import start_redis

pytestmark = pytest.mark.integration

ADMIN_KEY = "tsk_" + "a" * 43
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("gateway")
    with start_redis(work / "redis") as server:
        client = redis.Redis.from_url(server.url)
        store = EdgeStore(work / "vectors")
        # 1873 and 1874 are one patient's two studies: each must hide the other by default.
        statuses = build_index(data_dir, work / "home", store, client, patients={1873: "TEST-P1", 1874: "TEST-P1"})
        yield work, server, client, store, statuses


def make_client(indexed, sent=None, **section):
    work, _, client, store, _ = indexed
    deps = local_deps(work, client, store, lambda name, kwargs: (sent if sent is not None else []).append(
        (name, kwargs)), bootstrap_admin_key=ADMIN_KEY, **section)
    return create_app(deps).test_client()


@pytest.fixture(scope="module")
def api(indexed):
    return make_client(indexed)


def get(api, path, **kwargs):
    return api.get(path, headers={"X-API-Key": ADMIN_KEY}, **kwargs)


def main_tumour(indexed, image_id: int) -> str:
    return indexed[4][image_id].point_ids[0]


def test_a_study_answers_its_state_and_tumours(api, indexed):
    status = indexed[4][1873]
    body = get(api, f"/api/v1/studies/{status.study_instance_uid}").get_json()
    assert body["state"] == "done" and body["series"][0]["chosen_because"] == "the only MR series"
    assert [t["id"] for t in body["tumors"]] == status.point_ids
    assert body["tumors"][0]["labels"]["type"] == "glioma"


def test_a_tumour_and_its_thumbnail(api, indexed):
    # 18: a meningioma the shipped model types with p = 1.00. (pisov2d-c64-9ad766be52 calls 17, a central
    # meningioma near the sella, pituitary at 0.89: a model error the fold-5 figures count, not the gateway's.)
    tumour = get(api, f"/api/v1/tumors/{main_tumour(indexed, 18)}").get_json()
    assert tumour["labels"]["type"] == "meningioma" and len(tumour["box_voxels"]) == 6
    png = get(api, tumour["thumbnail_url"])
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data[:4] == b"\x89PNG"


def test_similar_tumours_come_ranked_with_why_they_matched(api, indexed):
    query = main_tumour(indexed, 1872)
    response = get(api, f"/api/v1/tumors/{query}/similar?k=5")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    similarities = [r["similarity"] for r in body["results"]]
    assert len(similarities) == 5 and similarities == sorted(similarities, reverse=True)
    assert query not in [r["tumor"]["id"] for r in body["results"]]
    top = body["results"][0]
    assert top["tumor"]["labels"]["type"] == "glioma", "expected the nearest tumour to be another glioma"
    assert "type" in top["why"]["agreeing_labels"] and 0 < top["why"]["size_ratio"] <= 1
    assert body["query_expansion"] == 0, "off unless the site turns it on"


def test_query_expansion_can_be_turned_on(indexed):
    query = main_tumour(indexed, 1872)
    body = get(make_client(indexed, query_expansion=10), f"/api/v1/tumors/{query}/similar?k=5").get_json()
    assert 0 < body["query_expansion"] <= 10 and body["results"][0]["tumor"]["labels"]["type"] == "glioma"


def test_filters_change_the_results(api, indexed):
    query = main_tumour(indexed, 1872)
    body = get(api, f"/api/v1/tumors/{query}/similar?k=10&type=pituitary").get_json()
    assert body["results"] and {r["tumor"]["labels"]["type"] for r in body["results"]} == {"pituitary"}
    small = get(api, f"/api/v1/tumors/{query}/similar?k=10&max_size_mm3=2000").get_json()
    assert all(r["tumor"]["labels"]["size_mm3"] <= 2000 for r in small["results"])


def test_the_same_patient_is_excluded_unless_asked(api, indexed):
    query, sibling = indexed[4][1873], indexed[4][1874]
    default = get(api, f"/api/v1/tumors/{query.point_ids[0]}/similar?k=50").get_json()
    assert sibling.study_instance_uid not in {r["tumor"]["study_instance_uid"] for r in default["results"]}
    included = get(api, f"/api/v1/tumors/{query.point_ids[0]}/similar?k=50&exclude_same_patient=false").get_json()
    assert sibling.study_instance_uid in {r["tumor"]["study_instance_uid"] for r in included["results"]}


@pytest.mark.parametrize("path, status", [
    ("/api/v1/tumors/00000000-0000-0000-0000-000000000000", 404),
    ("/api/v1/tumors/not-a-uuid/similar", 400),
    ("/api/v1/studies/1.2.3..4", 400),
    ("/api/v1/studies/1.2.3.4", 404),
])
def test_unknown_and_malformed_identifiers_are_problems(api, path, status):
    response = get(api, path)
    assert response.status_code == status and response.mimetype == PROBLEM
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_huge_k_and_bad_filters_are_refused(api, indexed):
    query = main_tumour(indexed, 17)
    for args, words in [("k=100000", "k: expected at most 100"), ("type=tumour", "type"),
                        ("min_size_mm3=nan", "min_size_mm3"), ("min_size_mm3=5&max_size_mm3=1", "min_size_mm3")]:
        response = get(api, f"/api/v1/tumors/{query}/similar?{args}")
        assert response.status_code == 400 and words in response.get_json()["detail"], (args, response.get_json())


def test_bad_region_requests_are_problems(api, indexed):
    status = indexed[4][17]
    headers = {"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"}
    malformed = api.post("/api/v1/search", data="{not json", headers=headers)
    assert malformed.status_code == 400 and malformed.mimetype == PROBLEM
    body = {"study_instance_uid": status.study_instance_uid, "series_instance_uid": status.series[0].series_instance_uid,
            "box": {"patient_mm": [0, 0, 0, 10, 10, math.nan]}}
    nan = api.post("/api/v1/search", data=json.dumps(body).replace("NaN", "NaN"), headers=headers)
    assert nan.status_code == 400 and "finite" in nan.get_json()["detail"]
    oversized = api.post("/api/v1/search", data="x" * 200_000, headers=headers)
    assert oversized.status_code == 413 and oversized.mimetype == PROBLEM


def test_a_region_search_without_a_worker_times_out_clearly(indexed):
    sent = []
    client = make_client(indexed, sent, region_timeout_s=0.5)
    status = indexed[4][17]
    body = {"study_instance_uid": status.study_instance_uid, "series_instance_uid": status.series[0].series_instance_uid,
            "box": {"voxels": [0, 100, 100, 1, 140, 140]}}
    response = client.post("/api/v1/search", json=body, headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 504 and "did not answer within 0.5 s" in response.get_json()["detail"]
    assert [name for name, _ in sent] == ["tumorsearch.worker.embed_region"]


def test_every_query_is_audited_with_the_studies_returned(api, indexed):
    query = main_tumour(indexed, 940)
    returned = get(api, f"/api/v1/tumors/{query}/similar?k=3").get_json()["results"]
    lines = [json.loads(line) for line in (indexed[0] / "audit.jsonl").read_text().splitlines()]
    event = [e for e in lines if e["query"].get("path", "").endswith(f"{query}/similar")][-1]
    assert event["event_code"]["code"] == "110112" and event["actor"]["name"]
    assert event["returned_studies"] == sorted({r["tumor"]["study_instance_uid"] for r in returned})
    assert ADMIN_KEY not in (indexed[0] / "audit.jsonl").read_text()


def test_metrics_count_requests_by_route(api, indexed):
    get(api, f"/api/v1/tumors/{main_tumour(indexed, 18)}")
    text = api.get("/metrics").get_data(as_text=True)
    assert 'route="/api/v1/tumors/<point_id>"' in text and "tumorsearch_gateway_request_seconds_bucket" in text
    assert len(IMAGES) == 9


def test_an_admin_reindexes_one_stored_study_and_an_unknown_one_is_a_404(indexed):
    sent = []
    client = make_client(indexed, sent)
    status = indexed[4][1873]
    answer = client.post(f"/api/v1/admin/reindex/{status.study_instance_uid}", headers={"X-API-Key": ADMIN_KEY})
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["handover"] == status.handover + 1 and answer.get_json()["instances"] == 1
    [(name, kwargs)] = sent
    assert name == "tumorsearch.worker.process_study"
    assert kwargs["message"]["study_instance_uid"] == status.study_instance_uid
    assert kwargs["message"]["location"].startswith("studies/") and kwargs["message"]["handover"] == 2
    unknown = client.post("/api/v1/admin/reindex/1.2.3.4.5", headers={"X-API-Key": ADMIN_KEY})
    assert unknown.status_code == 404 and unknown.mimetype == PROBLEM and len(sent) == 1
    assert "no stored instances of this study" in unknown.get_json()["detail"]
