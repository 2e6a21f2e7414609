"""The shared Celery settings keep the delivery guarantees and route each task to its queue."""

from __future__ import annotations

import pytest

from shared.broker.celery_config import celery_config
from shared.contracts.tasks import EMBED_REGION, INTERACTIVE_QUEUE, PROCESS_STUDY, STUDY_QUEUE

pytestmark = pytest.mark.unit


def test_delivery_guarantees_and_fast_restore_for_redis():
    config = celery_config("redis://127.0.0.1:1234/0", 600)
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"] == {
        "visibility_timeout": 600, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["result_backend"] is None and config["task_ignore_result"]


def test_routes_follow_the_contract():
    routes = celery_config("redis://127.0.0.1:1234/0", 600)["task_routes"]
    assert routes == {PROCESS_STUDY: {"queue": STUDY_QUEUE}, EMBED_REGION: {"queue": INTERACTIVE_QUEUE}}


def test_celery_accepts_every_key():
    from celery import Celery

    app = Celery("check")
    app.config_from_object(celery_config("redis://127.0.0.1:1234/0", 600, result_backend="redis://127.0.0.1:1234/1"))
    assert app.conf.task_acks_late and app.conf.broker_transport_options["visibility_timeout"] == 600
    assert not app.conf.task_ignore_result
    assert app.conf.find_value_for_key("worker_hijack_root_logger") is False


def test_redis_options_are_not_sent_to_other_transports():
    config = celery_config("sqla+sqlite:///x.db", 600, transport_options={"queue_tablename": "q"})
    assert config["broker_transport_options"] == {"queue_tablename": "q"}


def test_a_visibility_timeout_below_one_second_is_refused():
    with pytest.raises(ValueError, match="expected visibility_timeout_s >= 1, found 0"):
        celery_config("redis://127.0.0.1:1234/0", 0)
