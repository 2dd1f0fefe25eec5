"""The literal entity cache (semvec §5.19–5.21): verbatim code entities per session, found by token match."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from .engine import SESSION_NOT_FOUND, storable
from .model import EntityRow
from .work import Work

if TYPE_CHECKING:
    from ...store.base import WriteTxn
    from .engine import Sessions

_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> set[str]:
    """Lower-cased maximal runs of Unicode letters/digits (`MAX_RETRIES` → max, retries)."""
    return set(_TOKEN.findall(text.lower()))


def public(e: EntityRow) -> dict[str, Any]:
    return {"key": e.key, "kind": e.kind, "value": e.value, "context": e.context, "importance": e.importance,
            "access_count": e.access_count}


def exported(e: EntityRow) -> dict[str, Any]:
    return public(e) | {"created_at": e.created_at, "last_access_at": e.last_access_at}


def digest(rows: list[EntityRow]) -> str:
    """What `checksum_ok` compares for entities: SHA-256 of their exported form in insertion order."""
    return hashlib.sha256(json.dumps([exported(e) for e in rows], sort_keys=True).encode()).hexdigest()


def _changed(work: Work) -> None:
    work.state.entities_digest = digest(work.tx.sessions.entities(work.session_id))


async def put(engine: "Sessions", tenant: str, session_id: str, key: str, kind: str, value: str, context: str,
              importance: float) -> int:
    """Upsert by key (access count kept); a new key beyond capacity first evicts the least important, then the
    least recently accessed (never accessed first), then the oldest. Returns the entity count."""
    storable(key, kind, value, context)

    def mutation(tx: "WriteTxn") -> int:
        work = engine.must_open(tx, session_id)
        rows = tx.sessions.entities(session_id)
        old = next((e for e in rows if e.key == key), None)
        if old is not None:
            row = EntityRow(tx.tenant, session_id, key, old.seq, kind, value, context, importance, old.access_count,
                            old.created_at, old.last_access_at)
        else:
            while len(rows) >= engine.params.entity_capacity:
                victim = min(rows, key=lambda e: (e.importance, e.last_access_at if e.last_access_at is not None
                                                  else float("-inf"), e.seq))
                tx.sessions.delete_entity(session_id, victim.key)
                rows.remove(victim)
            work.state.entity_seq += 1
            row = EntityRow(tx.tenant, session_id, key, work.state.entity_seq, kind, value, context, importance, 0,
                            tx.now, None)
            rows.append(row)
        tx.sessions.put_entities([row])
        _changed(work)
        work.save()
        return len(rows)

    return await engine.store.submit(tenant, mutation)


async def find(engine: "Sessions", tenant: str, session_id: str, q: str, max_results: int) -> tuple[list[dict], int]:
    """(entities, total): insertion order for an empty query, else by matched tokens (returned ones touched)."""
    if not q:
        if await engine.store.sessions.get(tenant, session_id) is None:
            raise NotFound(SESSION_NOT_FOUND)
        rows = await engine.store.sessions.entities(tenant, session_id)
        return [public(e) for e in rows[:max_results]], len(rows)
    wanted = tokens(q)

    def mutation(tx: "WriteTxn") -> tuple[list[dict], int]:
        work = engine.must_open(tx, session_id)
        rows = tx.sessions.entities(session_id)
        scored = []
        for e in rows:
            hits = len(wanted & (tokens(e.key) | tokens(e.value) | tokens(e.context)))
            if hits:
                scored.append((-hits, -e.importance, -(e.last_access_at if e.last_access_at is not None
                                                       else float("-inf")), e.seq, e))
        picked = [s[-1] for s in sorted(scored, key=lambda s: s[:4])[:max_results]]
        for e in picked:
            e.access_count += 1
            e.last_access_at = tx.now
        if picked:
            tx.sessions.put_entities(picked)
            _changed(work)
            work.save()
        return [public(e) for e in picked], len(rows)

    return await engine.store.submit(tenant, mutation)


async def remove(engine: "Sessions", tenant: str, session_id: str, key: str) -> None:
    def mutation(tx: "WriteTxn") -> None:
        work = engine.must_open(tx, session_id)
        if not tx.sessions.delete_entity(session_id, key):
            raise NotFound("Entity not found")
        _changed(work)
        work.save()

    await engine.store.submit(tenant, mutation)
