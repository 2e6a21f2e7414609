"""The vector store facade: one interface (base), two engines (Qdrant through qdrant-client, qdrant-edge
embedded). Backends are imported lazily so a program loads only the engine it uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.vectorstore.base import (CollectionMissing, CollectionSpec, Condition, Distance, Filter, Hit, Match,
                                     MatchAny, PointRecord, Range, VectorStore)

if TYPE_CHECKING:
    from shared.vectorstore.edge_backend import EdgeStore, StoreLocked
    from shared.vectorstore.qdrant_backend import QdrantStore

__all__ = ["CollectionMissing", "CollectionSpec", "Condition", "Distance", "Filter", "Hit", "Match", "MatchAny",
           "PointRecord", "Range", "VectorStore", "QdrantStore", "EdgeStore", "StoreLocked",
           "open_server", "open_embedded"]

_LAZY = {"QdrantStore": "shared.vectorstore.qdrant_backend", "EdgeStore": "shared.vectorstore.edge_backend",
         "StoreLocked": "shared.vectorstore.edge_backend", "open_server": "shared.vectorstore.factory",
         "open_embedded": "shared.vectorstore.factory"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shared.vectorstore' has no attribute {name!r}")
