"""One interface over interchangeable vector-store backends (a Qdrant server, the embedded engine).

Callers speak in these types only; each backend translates them. Scores are similarities: higher is
closer, whatever the distance (Qdrant's convention), so results compare across backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Distance = Literal["Cosine", "Euclid", "Dot"]
Scalar = str | int | float | bool


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    vector_name: str
    size: int
    distance: Distance = "Cosine"
    # payload field -> "keyword" | "integer" | "float": indexes a server builds for filtered search
    indexes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PointRecord:
    id: str  # a UUID string (shared.contracts.vectors.point_id)
    vector: Sequence[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Match:
    """Payload field equals value."""
    key: str
    value: Scalar


@dataclass(frozen=True)
class MatchAny:
    """Payload field equals one of values."""
    key: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    """gte <= payload field <= lte (either bound may be None)."""
    key: str
    gte: float | None = None
    lte: float | None = None


Condition = Match | MatchAny | Range


@dataclass(frozen=True)
class Filter:
    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()


class CollectionMissing(LookupError):
    """The named collection does not exist (no model has indexed anything yet)."""


class VectorStore(ABC):
    """What TumorSearch needs of a vector store, and nothing more."""

    @abstractmethod
    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection if it is missing; refuse one that exists with another size or distance."""

    @abstractmethod
    def collection_exists(self, name: str) -> bool: ...

    @abstractmethod
    def upsert(self, collection: str, points: Sequence[PointRecord]) -> None:
        """Insert or replace points by id; durable when it returns."""

    @abstractmethod
    def delete(self, collection: str, flt: Filter) -> None:
        """Delete every point the filter matches (a re-sent study replaces its points)."""

    @abstractmethod
    def search(self, collection: str, vector: Sequence[float], limit: int,
               flt: Filter | None = None) -> list[Hit]:
        """The `limit` most similar points passing the filter, most similar first (exact search)."""

    @abstractmethod
    def retrieve(self, collection: str, ids: Sequence[str]) -> list[PointRecord]:
        """Points by id, with vectors and payloads, in the order asked; missing ids are left out."""

    def point_and_neighbours(self, collection: str, point_id: str, limit: int,
                             flt: Filter | None = None) -> tuple[PointRecord | None, list[Hit]]:
        """A point (vector and payload) and the `limit` points most similar to its vector passing the filter;
        (None, []) when there is no such point. The point itself may be among the neighbours or not (a
        server leaves query ids out): callers drop it. A server answers this in one round trip."""
        found = self.retrieve(collection, [point_id])
        if not found:
            return None, []
        return found[0], self.search(collection, found[0].vector, limit, flt)

    @abstractmethod
    def count(self, collection: str, flt: Filter | None = None) -> int: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot answer (readiness checks)."""

    @abstractmethod
    def close(self) -> None: ...
