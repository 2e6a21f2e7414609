"""When each study goes quiet, shared by every listener replica through Redis.

One sorted set: member = study UID, score = the time (Redis's clock, so replicas' clocks never disagree)
at which the study is quiet. Each stored instance pushes its study's time forward; each replica's hand-over
loop atomically takes the studies whose time has passed (a Lua script: exactly one replica gets a study)
and counts the hand-overs per study in a hash. A study split over two associations to two replicas is
therefore quiet only after the last instance of both, and handed over once.

Redis being unreachable never fails a C-STORE: the outbox (outbox.py) already holds the study, and the
hand-over loop replays the outbox into Redis when it answers again (`healthy` tells it to).
"""

from __future__ import annotations

import logging
import threading

import redis

from shared.contracts.handovers import LISTENER_PREFIX

log = logging.getLogger("tumorsearch.listener")

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
# KEYS[1] quiet set; ARGV: study UID, quiet period (s), "NX" to keep an existing time (replay) or "".
TOUCH = _NOW + """
if ARGV[3] == 'NX' then return redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[2]), ARGV[1]) end
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"""
# KEYS[1] quiet set, KEYS[2] hand-over counts; ARGV[1] how many at most. Returns uid1, n1, uid2, n2, ...
CLAIM_DUE = _NOW + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, uid in ipairs(due) do
  redis.call('ZREM', KEYS[1], uid)
  table.insert(out, uid)
  table.insert(out, redis.call('HINCRBY', KEYS[2], uid, 1))
end
return out
"""


class StudyState:
    def __init__(self, client: redis.Redis, quiet_period_s: float, prefix: str = LISTENER_PREFIX) -> None:
        self.client = client
        self.quiet_period_s = quiet_period_s
        # The hand-over counts are shared with the re-index senders (shared/contracts/handovers.py).
        self.keys = [f"{prefix}:quiet", f"{prefix}:handovers"]
        self._touch = client.register_script(TOUCH)
        self._claim = client.register_script(CLAIM_DUE)
        # Cleared on any Redis failure; the hand-over loop replays the outbox, then sets it.
        self.healthy = threading.Event()

    def touch(self, study_uid: str) -> bool:
        """An instance of the study arrived: it is quiet `quiet_period_s` from now. False if Redis failed."""
        return self._call_touch(study_uid, "")

    def schedule_if_absent(self, study_uid: str) -> bool:
        """Replay: hand the study over after a quiet period unless it is already waiting."""
        return self._call_touch(study_uid, "NX")

    def _call_touch(self, study_uid: str, mode: str) -> bool:
        if not self.healthy.is_set():
            return False
        try:
            self._touch(keys=self.keys[:1], args=[study_uid, self.quiet_period_s, mode])
            return True
        except redis.RedisError as error:
            self.lost(error)
            return False

    def claim_due(self, limit: int = 50) -> list[tuple[str, int]]:
        """Studies quiet now, each taken by this replica only, with its hand-over number (1, 2, …)."""
        try:
            flat = self._claim(keys=self.keys, args=[limit])
        except redis.RedisError as error:
            self.lost(error)
            return []
        return [(uid.decode("ascii"), int(number)) for uid, number in zip(flat[::2], flat[1::2])]

    def reachable(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def lost(self, error: Exception) -> None:
        if self.healthy.is_set():
            log.warning("redis unreachable; instances go on being accepted into the outbox",
                        extra={"error": type(error).__name__})
        self.healthy.clear()
