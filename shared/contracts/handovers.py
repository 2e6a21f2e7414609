"""Hand-over numbers: one counter per study in Redis, shared by every sender of a study to the worker (the
listener's replicas, the gateway's re-index endpoint, `tumorsearch reindex`), so each hand-over of a study
carries its own number (1, 2, …) and "wait until the study's status has hand-over N" is unambiguous.

The listener increments the counter inside its claim script (services/listener/study_state.py); the
re-index senders call `next_handover`, which never goes below the study's last status + 1 (a status written
before this counter existed, or by a sender that did not use it, must not be overtaken by a smaller number).
"""

from __future__ import annotations

import redis

LISTENER_PREFIX = "tumorsearch:listener"
HANDOVER_COUNTS = f"{LISTENER_PREFIX}:handovers"  # hash: study UID -> hand-overs so far

# KEYS[1] the counts; ARGV: study UID, the smallest acceptable number. Atomic: two senders never share one.
_NEXT = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local floor = tonumber(ARGV[2])
if n < floor then
  redis.call('HSET', KEYS[1], ARGV[1], floor)
  n = floor
end
return n
"""


def next_handover(client: redis.Redis, study_uid: str, at_least: int = 1) -> int:
    return int(client.eval(_NEXT, 1, HANDOVER_COUNTS, study_uid, at_least))
