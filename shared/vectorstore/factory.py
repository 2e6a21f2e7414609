"""Which store a program opens: every service talks to a Qdrant REST endpoint (a server in production,
`tumorsearch vectorstore` on one machine); only that host embeds the engine."""

from __future__ import annotations

from pathlib import Path

from shared.config import VectorStoreSettings
from shared.vectorstore.base import VectorStore


def open_server(settings: VectorStoreSettings, timeout_s: float | None = None) -> VectorStore:
    """The Qdrant REST endpoint of `settings`; `timeout_s` overrides the request timeout (probes)."""
    from shared.vectorstore.qdrant_backend import QdrantStore

    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    return QdrantStore.server(settings.url, api_key=api_key, timeout_s=timeout_s or settings.timeout_s)


def open_embedded(root: str | Path) -> VectorStore:
    """The embedded engine over `root` (one process only: the vector store host)."""
    from shared.vectorstore.edge_backend import EdgeStore

    return EdgeStore(root)
