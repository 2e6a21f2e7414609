"""A cap on deliveries of one task, so a poison study (one that kills the worker) cannot loop forever.

With acks late and reject-on-worker-lost, a task whose worker dies is delivered again; with Redis, Celery
keeps no delivery counter (AMQP's `x-delivery-count` has no Redis equivalent). So the worker counts itself:
at task start it increments a Redis key named after the task id, which every redelivery of the same
message shares, and gives the task up once the count exceeds the cap.
"""

from __future__ import annotations

import redis

KEY_PREFIX = "tumorsearch:deliveries:"


class DeliveryCapExceeded(RuntimeError):
    """This task was delivered more times than allowed: treat it as poison (log it, ack it, do not run it)."""

    def __init__(self, task_id: str, deliveries: int, cap: int) -> None:
        super().__init__(f"expected task {task_id} to be delivered at most {cap} times, found delivery number "
                         f"{deliveries}; giving it up as poison")
        self.task_id = task_id
        self.deliveries = deliveries
        self.cap = cap


def count_delivery(client: redis.Redis, task_id: str, *, ttl_s: int) -> int:
    """Record one more delivery of `task_id`; return how many there have been, this one included.

    ttl_s: how long the count is kept after the latest delivery. It must outlast the gap between two
    deliveries (the visibility timeout plus the task's run time), or a poison task's count resets to 1;
    the expiry only exists so counts of tasks that finished do not accumulate.
    """
    if ttl_s < 1:
        raise ValueError(f"expected ttl_s >= 1, found {ttl_s}")
    key = KEY_PREFIX + task_id
    # One transaction: a worker killed between the two commands must not leave a key without expiry.
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, ttl_s)
        deliveries, _ = pipe.execute()
    return int(deliveries)


def enforce_delivery_cap(client: redis.Redis, task_id: str, *, cap: int, ttl_s: int) -> int:
    """Count this delivery; raise DeliveryCapExceeded if it is past `cap`. Call first thing in a task."""
    if cap < 1:
        raise ValueError(f"expected cap >= 1, found {cap}")
    deliveries = count_delivery(client, task_id, ttl_s=ttl_s)
    if deliveries > cap:
        raise DeliveryCapExceeded(task_id, deliveries, cap)
    return deliveries


def forget_deliveries(client: redis.Redis, task_id: str) -> None:
    """Drop the count once the task succeeded (optional: the expiry removes it anyway)."""
    client.delete(KEY_PREFIX + task_id)
