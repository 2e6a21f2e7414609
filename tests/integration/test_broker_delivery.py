"""The delivery cap against a real redis-server: counts survive redeliveries, expire, and stop poison."""

from __future__ import annotations

import pytest
import redis

from shared.broker.delivery import (
    KEY_PREFIX, DeliveryCapExceeded, count_delivery, enforce_delivery_cap, forget_deliveries)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_server):
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.close()


def test_each_delivery_of_a_task_id_is_counted_separately_from_other_tasks(client):
    assert [count_delivery(client, "task-a", ttl_s=60) for _ in range(3)] == [1, 2, 3]
    assert count_delivery(client, "task-b", ttl_s=60) == 1


def test_the_count_expires_so_finished_tasks_leave_nothing_behind(client):
    count_delivery(client, "task-a", ttl_s=60)
    assert 0 < client.ttl(KEY_PREFIX + "task-a") <= 60
    forget_deliveries(client, "task-a")
    assert client.exists(KEY_PREFIX + "task-a") == 0


def test_a_task_past_the_cap_is_given_up_as_poison(client):
    assert [enforce_delivery_cap(client, "poison", cap=3, ttl_s=60) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(DeliveryCapExceeded, match="at most 3 times, found delivery number 4") as raised:
        enforce_delivery_cap(client, "poison", cap=3, ttl_s=60)
    assert (raised.value.task_id, raised.value.deliveries, raised.value.cap) == ("poison", 4, 3)


def test_nonsense_arguments_are_refused(client):
    with pytest.raises(ValueError, match="expected cap >= 1, found 0"):
        enforce_delivery_cap(client, "t", cap=0, ttl_s=60)
    with pytest.raises(ValueError, match="expected ttl_s >= 1, found 0"):
        count_delivery(client, "t", ttl_s=0)
