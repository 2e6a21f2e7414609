"""What the gateway's blueprints use, built once by main.py from the settings (or by tests from real
local components) and handed to `create_app`: no blueprint reads the environment or opens connections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from shared.config.programs import GatewaySection
from shared.contracts.storage import StudyLayout
from shared.contracts.vectors import collection_name
from shared.vectorstore.base import VectorStore


@dataclass(frozen=True)
class GatewayDeps:
    readiness: Mapping[str, Callable[[], None]]
    store: VectorStore
    redis: redis.Redis                 # with a socket timeout: keys, rate limits, statuses
    layout: StudyLayout
    model_version: str
    section: GatewaySection
    send_task: Callable[[str, dict[str, Any]], None]  # Celery task by name, kwargs
    audit_path: Path
    redis_blocking: redis.Redis | None = None  # no socket timeout: a region search waits on it (BLPOP)

    @property
    def collection(self) -> str:
        return collection_name(self.model_version)

