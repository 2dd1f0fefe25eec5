"""`StigmerMemoryStorage`: CrewAI's unified-memory `StorageBackend` (crewai 1.15) over the SDK's keys.

CrewAI's `Memory` embeds text itself and hands the backend records with their vectors; search is by vector.
The memory runtime's episodes and compiled memories have no place for a caller's vector (its search is by
words), so records are KV keys: one key per record under its scope, one index key per record id
(docs/integrations.md has the mapping and what search means).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Any, Iterable, Iterator
from urllib.parse import quote

from crewai.memory.types import MemoryRecord, ScopeInfo

from stigmer.client import Client, NotFoundError, Op

RECORDS = "s/"  # s/<scope segment>/…/:<id> -> the record (its JSON, embedding included)
INDEX = "i/"  # i/<id> -> {"key": the record's key}, so a record is found by id alone
TXN_RECORDS = 50  # two keys a record; a transaction holds up to 100


def _segments(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split("/") if s]


def scope_prefix_key(scope: str | None) -> str:
    """Key prefix of a scope and everything under it: `/a` covers `/a` and `/a/b`, never `/ab`."""
    return RECORDS + "".join(quote(s, safe="") + "/" for s in _segments(scope))


def record_key(record: MemoryRecord) -> str:
    return scope_prefix_key(record.scope) + ":" + quote(record.id, safe="")


def index_key(record_id: str) -> str:
    return INDEX + quote(record_id, safe="")


def _scope_path(scope: str | None) -> str:
    return "/" + "/".join(_segments(scope))


def _stored(record: MemoryRecord) -> dict[str, Any]:
    # The embedding is excluded from MemoryRecord's own serialization (to keep it out of prompts): add it back.
    return record.model_dump(mode="json") | {"embedding": record.embedding}


def _score(a: list[float], b: list[float]) -> float:
    """1 / (1 + L2 distance): the scale of CrewAI's bundled LanceDB backend."""
    return 1.0 / (1.0 + math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True))))


def _matches(record: MemoryRecord, categories: list[str] | None, metadata_filter: dict[str, Any] | None) -> bool:
    # As LanceDBStorage filters: any one of the categories, every metadata member equal.
    if categories and not any(c in record.categories for c in categories):
        return False
    return not metadata_filter or all(record.metadata.get(k) == v for k, v in metadata_filter.items())


class StigmerMemoryStorage:
    """Pass to `crewai.Memory(storage=StigmerMemoryStorage(client))`. `client` is a `stigmer.client.Client`
    the caller owns (a `Client` may be shared between threads: CrewAI saves from a background thread)."""

    def __init__(self, client: Client, *, namespace: str = "crewai-memory") -> None:
        self.client = client
        self.namespace = namespace

    # ---- reading ----------------------------------------------------------------------------------------

    def _records(self, scope_prefix: str | None = None) -> Iterator[MemoryRecord]:
        for entry in self.client.list(self.namespace, prefix=scope_prefix_key(scope_prefix)):
            yield MemoryRecord.model_validate(entry.value)

    def get_record(self, record_id: str) -> MemoryRecord | None:
        pointer = self.client.batch_get(self.namespace, [index_key(record_id)])[0]
        if pointer is None:
            return None
        entry = self.client.batch_get(self.namespace, [pointer.value["key"]])[0]
        return None if entry is None else MemoryRecord.model_validate(entry.value)

    def search(self, query_embedding: list[float], scope_prefix: str | None = None,
               categories: list[str] | None = None, metadata_filter: dict[str, Any] | None = None,
               limit: int = 10, min_score: float = 0.0) -> list[tuple[MemoryRecord, float]]:
        """Exact nearest neighbours: every record of the scope is read and scored on the client."""
        scored = []
        for record in self._records(scope_prefix):
            if not record.embedding or len(record.embedding) != len(query_embedding):
                continue  # a record saved without a vector (or by another embedder) has no distance
            if _matches(record, categories, metadata_filter):
                score = _score(record.embedding, query_embedding)
                if score >= min_score:
                    scored.append((record, score))
        scored.sort(key=lambda rs: -rs[1])
        return scored[:limit]

    def list_records(self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0) -> list[MemoryRecord]:
        records = sorted(self._records(scope_prefix), key=lambda r: r.created_at, reverse=True)
        return records[offset:offset + limit]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        path = _scope_path(scope)
        records = list(self._records(path))
        child = path.rstrip("/") + "/"
        return ScopeInfo(
            path=path, record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min((r.created_at for r in records), default=None),
            newest_record=max((r.created_at for r in records), default=None),
            child_scopes=sorted({child + _segments(r.scope)[len(_segments(path))] for r in records
                                 if len(_segments(r.scope)) > len(_segments(path))}),
        )

    def list_scopes(self, parent: str = "/") -> list[str]:
        return self.get_scope_info(parent).child_scopes

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self._records(scope_prefix):
            for c in record.categories:
                counts[c] = counts.get(c, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        return sum(1 for _ in self.client.list(self.namespace, prefix=scope_prefix_key(scope_prefix), values=False))

    # ---- writing ----------------------------------------------------------------------------------------

    def save(self, records: list[MemoryRecord]) -> None:
        """Upsert by id: a record saved again replaces the stored one (also when its scope changed)."""
        records = list({r.id: r for r in records}.values())  # the last copy of an id wins
        for i in range(0, len(records), TXN_RECORDS):
            chunk = records[i:i + TXN_RECORDS]
            pointers = self.client.batch_get(self.namespace, [index_key(r.id) for r in chunk])
            ops = []
            for record, pointer in zip(chunk, pointers):
                key = record_key(record)
                if pointer is not None and pointer.value["key"] != key:
                    ops.append(Op("delete", self.namespace, pointer.value["key"]))
                ops.append(Op("put", self.namespace, key, value=_stored(record)))
                ops.append(Op("put", self.namespace, index_key(record.id), value={"key": key}))
            self.client.txn(ops=ops)

    def update(self, record: MemoryRecord) -> None:
        self.save([record])

    def touch_records(self, record_ids: list[str]) -> None:
        """Set `last_accessed` to now (CrewAI calls this after a recall, when the backend has it)."""
        now = datetime.now()
        records = [r for r in (self.get_record(i) for i in record_ids) if r is not None]
        self.save([r.model_copy(update={"last_accessed": now}) for r in records])

    def _remove(self, records: Iterable[MemoryRecord]) -> int:
        records = list(records)
        for i in range(0, len(records), TXN_RECORDS):
            keys = [k for r in records[i:i + TXN_RECORDS] for k in (record_key(r), index_key(r.id))]
            try:
                self.client.txn(ops=[Op("delete", self.namespace, k) for k in keys])
            except NotFoundError:  # another writer removed one first: delete what is left, one by one
                for k in keys:
                    try:
                        self.client.delete(self.namespace, k)
                    except NotFoundError:
                        pass
        return len(records)

    def delete(self, scope_prefix: str | None = None, categories: list[str] | None = None,
               record_ids: list[str] | None = None, older_than: datetime | None = None,
               metadata_filter: dict[str, Any] | None = None) -> int:
        """Delete the records matching every criterion given; the number deleted."""
        if record_ids is not None:
            found = [r for r in (self.get_record(i) for i in record_ids) if r is not None]
            prefix = scope_prefix_key(scope_prefix)
            candidates = [r for r in found if record_key(r).startswith(prefix)]
        else:
            candidates = list(self._records(scope_prefix))
        return self._remove(r for r in candidates if _matches(r, categories, metadata_filter)
                            and (older_than is None or r.created_at < older_than))

    def reset(self, scope_prefix: str | None = None) -> None:
        self._remove(self._records(scope_prefix))

    # ---- async faces: the sync ones in a worker thread (a Client may be shared between threads) -------

    async def asave(self, records: list[MemoryRecord]) -> None:
        await asyncio.to_thread(self.save, records)

    async def asearch(self, query_embedding: list[float], scope_prefix: str | None = None,
                      categories: list[str] | None = None, metadata_filter: dict[str, Any] | None = None,
                      limit: int = 10, min_score: float = 0.0) -> list[tuple[MemoryRecord, float]]:
        return await asyncio.to_thread(self.search, query_embedding, scope_prefix, categories, metadata_filter,
                                       limit, min_score)

    async def adelete(self, scope_prefix: str | None = None, categories: list[str] | None = None,
                      record_ids: list[str] | None = None, older_than: datetime | None = None,
                      metadata_filter: dict[str, Any] | None = None) -> int:
        return await asyncio.to_thread(self.delete, scope_prefix, categories, record_ids, older_than,
                                       metadata_filter)
