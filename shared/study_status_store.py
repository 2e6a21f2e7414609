"""Read and write StudyStatus documents in Redis (shared/contracts/study_status.py).

Kept without expiry: the gateway must be able to say what happened to a study months later. A study
is one small JSON document (< 2 kB), so a million studies are ~2 GB of Redis memory at most;
`max_age_s` lets an installation bound it.
"""

from __future__ import annotations

import redis

from shared.contracts.study_status import StudyStatus, status_key


class StudyStatusStore:
    def __init__(self, client: redis.Redis, max_age_s: int | None = None) -> None:
        self.client = client
        self.max_age_s = max_age_s

    def put(self, status: StudyStatus) -> None:
        self.client.set(status_key(status.study_instance_uid), status.model_dump_json(), ex=self.max_age_s)

    def get(self, study_uid: str) -> StudyStatus | None:
        raw = self.client.get(status_key(study_uid))
        return None if raw is None else StudyStatus.model_validate_json(raw)
