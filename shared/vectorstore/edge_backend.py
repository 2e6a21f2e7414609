"""The facade over qdrant-edge: Qdrant's own engine embedded in this process, one shard per collection.

Layout under the root folder:
    <root>/.lock                     held (flock) by the one process that owns the store
    <root>/<collection>/             an EdgeShard (segments + write-ahead log)
    <root>/<collection>.json         the collection's spec; written last and atomically, so it is the
                                     commit point of a creation: no spec file, no collection
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import qdrant_edge as qe

from shared.vectorstore import filters
from shared.vectorstore.base import CollectionMissing, CollectionSpec, Filter, Hit, PointRecord, VectorStore

SPEC_FORMAT = 1
_DISTANCE = {"Cosine": qe.Distance.Cosine, "Euclid": qe.Distance.Euclid, "Dot": qe.Distance.Dot}
_INDEX = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
          "float": qe.PayloadSchemaType.Float}
_EXACT = qe.SearchParams(exact=True)
# Every search is exact (an HNSW graph loses a quarter of the true top 10 on spread-out 64-d vectors), so
# no graph is built: m=0 makes the optimizer only rebuild segments with their payload indexes (7 s instead of
# 27-36 s for 100k points).
_NO_GRAPH = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)
# One search thread: a search is one segment scan, and handing it to a pool costs more than it saves on two
# cores (1.7 instead of 2.05 ms per 100k-point search); payloads cached in memory (they are small).
_RUNTIME = {"max_search_threads": 1, "payload_memory": qe.Memory.Cached}


class StoreLocked(RuntimeError):
    """Another process has this embedded store open (an EdgeShard admits one process at a time)."""


class EdgeStore(VectorStore):
    """The embedded engine over a folder. One process at a time; threads of that process may share it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_folder(self._root)
        self._mutex = threading.Lock()
        self._shards: dict[str, qe.EdgeShard] = {}
        self._specs: dict[str, CollectionSpec] = {}

    def __repr__(self) -> str:
        return f"EdgeStore({str(self._root)!r})"

    # -- collections ---------------------------------------------------------------------------------

    def ensure_collection(self, spec: CollectionSpec) -> None:
        filters.check_spec(spec)
        with self._mutex:
            existing = self._read_spec(spec.name)
            if existing is None:
                self._create(spec)
                return
            filters.refuse_mismatch(spec, existing.vector_name, existing.size, existing.distance)
            missing = {k: v for k, v in spec.indexes.items() if existing.indexes.get(k) != v}
            if missing:  # a newer program may filter on more fields: add their indexes, keep the data
                shard = self._shard_locked(spec.name)
                _create_indexes(shard, missing)
                shard.flush()
                self._write_spec(dataclasses.replace(existing, indexes={**existing.indexes, **missing}))

    def _create(self, spec: CollectionSpec) -> None:
        folder = self._root / spec.name
        if folder.exists():
            # A shard without its spec file is a creation interrupted before its commit point; no point
            # can have been written to it (upsert needs the spec), so starting over loses nothing.
            shutil.rmtree(folder)
        config = qe.EdgeConfig(vectors=_vectors(spec), hnsw_config=_NO_GRAPH, **_RUNTIME)
        shard = qe.EdgeShard.create(str(folder), config)
        _create_indexes(shard, spec.indexes)
        shard.flush()
        self._shards[spec.name] = shard
        self._write_spec(spec)

    def collection_exists(self, name: str) -> bool:
        return self._spec_path(filters.check_collection_name(name)).exists()

    def _spec_path(self, name: str) -> Path:
        return self._root / f"{name}.json"

    def _read_spec(self, name: str) -> CollectionSpec | None:
        if name in self._specs:
            return self._specs[name]
        path = self._spec_path(filters.check_collection_name(name))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        if data.pop("format", None) != SPEC_FORMAT:
            raise ValueError(f"{path}: expected a collection spec of format {SPEC_FORMAT}, found {data!r}")
        spec = self._specs[name] = CollectionSpec(**data)
        return spec

    def _write_spec(self, spec: CollectionSpec) -> None:
        data = {"format": SPEC_FORMAT, **dataclasses.asdict(spec)}
        _write_atomically(self._spec_path(spec.name), json.dumps(data, indent=2, sort_keys=True) + "\n")
        self._specs[spec.name] = spec

    def spec(self, name: str) -> CollectionSpec:
        """The collection's spec (vector name, size, distance); CollectionMissing if there is none."""
        return self._spec(name)

    def collection_names(self) -> list[str]:
        return sorted(path.stem for path in self._root.glob("*.json"))

    def _spec(self, name: str) -> CollectionSpec:
        spec = self._read_spec(name)
        if spec is None:
            raise CollectionMissing(f"collection {name!r} does not exist in {self._root}")
        return spec

    def _shard(self, name: str) -> qe.EdgeShard:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._mutex:
            return self._shard_locked(name)

    def _shard_locked(self, name: str) -> qe.EdgeShard:
        if self._lock_fd is None:  # reopening a shard without holding the folder lock would defeat it
            raise RuntimeError(f"embedded vector store at {self._root}: expected an open store, found it closed")
        if name not in self._shards:
            self._shards[name] = _load_shard(self._root / name, _vectors(self._spec(name)))
        return self._shards[name]

    # -- points --------------------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[PointRecord]) -> None:
        if not points:
            return
        spec, shard = self._spec(collection), self._shard(collection)
        edge_points = [qe.Point(
            filters.point_id(p.id),
            {spec.vector_name: filters.vector_list(p.vector, spec.size, f"vector of point {p.id}")},
            filters.json_payload(p.payload)) for p in points]
        shard.update(qe.UpdateOperation.upsert_points(edge_points))
        shard.flush()  # durable on return, as the facade promises, not only once the WAL is replayed

    def delete(self, collection: str, flt: Filter) -> None:
        filters.require_conditions(flt, f"delete from {collection!r}")
        shard = self._shard(collection)
        shard.update(qe.UpdateOperation.delete_points_by_filter(filters.to_edge(flt)))
        shard.flush()

    def search(self, collection: str, vector: Sequence[float], limit: int,
               flt: Filter | None = None) -> list[Hit]:
        spec, shard = self._spec(collection), self._shard(collection)
        query = qe.Query.Nearest(filters.vector_list(vector, spec.size, "query vector"), using=spec.vector_name)
        points = shard.query(qe.QueryRequest(limit=limit, query=query, filter=filters.to_edge(flt),
                                             with_payload=True, with_vector=False, params=_EXACT))
        return filters.ranked(Hit(str(p.id), filters.similarity(p.score, spec.distance), p.payload or {})
                              for p in points)

    def retrieve(self, collection: str, ids: Sequence[str]) -> list[PointRecord]:
        spec, shard = self._spec(collection), self._shard(collection)
        asked = [filters.point_id(i) for i in ids]
        if not asked:
            return []
        records = shard.retrieve(asked, with_payload=True, with_vector=[spec.vector_name])
        return filters.in_asked_order(
            (PointRecord(str(r.id), list(r.vector[spec.vector_name]), r.payload or {}) for r in records), asked)

    def optimize(self, collection: str) -> bool:
        """Let the engine rebuild its segments (payload indexes included) once writes have settled. A filtered
        search over a freshly written 100k points takes 9-12 ms, 2.5-3.5 ms after this. It holds the
        interpreter while it runs (about 7 s per 100k new points): callers run it when writes go quiet.
        True when anything was rebuilt."""
        shard = self._shard(collection)
        return bool(shard.optimize())

    def count(self, collection: str, flt: Filter | None = None) -> int:
        return self._shard(collection).count(qe.CountRequest(exact=True, filter=filters.to_edge(flt)))

    def ping(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError(f"embedded vector store at {self._root}: expected an open store, found it closed")

    def close(self) -> None:
        with self._mutex:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None


def _create_indexes(shard: qe.EdgeShard, indexes: dict[str, str]) -> None:
    for key, kind in indexes.items():
        shard.update(qe.UpdateOperation.create_field_index(key, _INDEX[kind]))


def _lock_folder(root: Path) -> int:
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLocked(_locked_message(root)) from None
    return fd


def _locked_message(root: Path) -> str:
    return (f"embedded vector store at {root}: expected to open it, found it held by another process. "
            f"The embedded engine admits one process at a time; have other programs reach it through "
            f"`tumorsearch vectorstore` (its REST endpoint), or stop the process that holds it.")


def _vectors(spec: CollectionSpec) -> dict[str, qe.EdgeVectorParams]:
    return {spec.vector_name: qe.EdgeVectorParams(size=spec.size, distance=_DISTANCE[spec.distance])}


def _load_shard(folder: Path, vectors: dict[str, qe.EdgeVectorParams]) -> qe.EdgeShard:
    try:
        return qe.EdgeShard.load(str(folder), qe.EdgeConfig(vectors=vectors, **_RUNTIME))
    except Exception as exc:
        if "WouldBlock" in str(exc):  # the shard's WAL is locked by another process
            raise StoreLocked(_locked_message(folder.parent)) from exc
        raise


def _write_atomically(path: Path, text: str) -> None:
    """Temp file, fsync, rename, fsync the folder: a reader sees the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
