"""Search by region through a real worker: the gateway sends embed_region by name, the worker embeds the box
of a stored series and replies through Redis, the gateway ranks the index with it."""

from __future__ import annotations

import pytest
import redis
from celery import Celery

from services.gateway.app import create_app
from services.gateway.deps import GatewayDeps
from shared.broker.celery_config import celery_config
from shared.config.programs import GatewaySection
from shared.shipped_model import shipped_model_version
from support.gateway_index import build_index
from support.servers import start_redis
from support.worker import worker_system

pytestmark = pytest.mark.integration

KEY = "tsk_" + "b" * 43


def test_a_drawn_box_finds_tumours_like_the_one_inside_it(tmp_path, data_dir):
    with start_redis(tmp_path / "redis") as server, worker_system(tmp_path, server.url) as system:
        client = redis.Redis.from_url(server.url)
        statuses = build_index(data_dir, system.home, system.store, client)
        celery = Celery("gateway-test", set_as_current=False)
        celery.conf.update(celery_config(server.url, 60))
        deps = GatewayDeps(readiness={}, store=system.store, redis=client, layout=system.layout,
                           model_version=shipped_model_version(),
                           section=GatewaySection(bootstrap_admin_key=KEY, region_timeout_s=60),
                           send_task=lambda name, kwargs: celery.send_task(name, kwargs=kwargs),
                           audit_path=tmp_path / "audit.jsonl")
        api = create_app(deps).test_client()
        glioma = statuses[1873]
        tumour = api.get(f"/api/v1/tumors/{glioma.point_ids[0]}", headers={"X-API-Key": KEY}).get_json()
        body = {"study_instance_uid": glioma.study_instance_uid,
                "series_instance_uid": glioma.series[0].series_instance_uid,
                "box": {"voxels": tumour["box_voxels"]}, "k": 4, "exclude_same_patient": False}
        response = api.post("/api/v1/search", json=body, headers={"X-API-Key": KEY})
        assert response.status_code == 200, response.get_json()
        results = response.get_json()["results"]
        assert results[0]["tumor"]["id"] == glioma.point_ids[0], "expected the box's own tumour first"
        assert results[0]["similarity"] > 0.99
        assert response.get_json()["query"]["box_voxels"] == tumour["box_voxels"]
        outside = dict(body, box={"voxels": [0, 0, 0, 1, 10000, 10000]}, study_instance_uid="1.2.3")
        assert api.post("/api/v1/search", json=outside, headers={"X-API-Key": KEY}).status_code == 422
