"""schemathesis against the served OpenAPI document: generated requests to every operation never get a
5xx and every answer conforms to the document (a real index: the embedded store and real Redis)."""

from __future__ import annotations

import pytest
import redis
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings

from services.gateway.app import create_app
from shared.vectorstore.edge_backend import EdgeStore
from support.gateway_index import build_index, local_deps
from support.servers import start_redis

pytestmark = pytest.mark.integration

KEY = "tsk_" + "c" * 43


@pytest.fixture(scope="module")
def gateway_app(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("schema")
    with start_redis(work / "redis") as server:
        client = redis.Redis.from_url(server.url)
        store = EdgeStore(work / "vectors")
        build_index(data_dir, work / "home", store, client)
        yield create_app(local_deps(work, client, store, bootstrap_admin_key=KEY, rate_limit_per_minute=100000,
                                    region_timeout_s=0.2))


def test_the_api_keeps_its_document(gateway_app):
    # Driven by hand rather than through schemathesis' pytest plugin, whose lazy fixture loading broke under
    # pytest 9 in a full run ('Function' object has no attribute '_nodeid'). Every check but one: "schema-valid
    # data is accepted" cannot hold where a rule spans two fields (min_size_mm3 <= max_size_mm3), which JSON
    # Schema cannot say; those answer 400 with the reason.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", gateway_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers={"X-API-Key": KEY}, excluded_checks=[positive_data_acceptance])

        check()
