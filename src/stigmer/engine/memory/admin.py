"""Statewave admin (§5.17): compile jobs, the null-tenant audit, a subject's export and import, and the
webhook outbox's figures. Admin calls are filtered only by their own `tenant_id` arguments, never by the
request's Statewave tenant; nothing crosses the Stigmer tenant of the caller.

Export documents carry a checksum over canonical JSON (`json.dumps(..., sort_keys=True)`, §5.17). An import
runs the five checks in the spec's order, the fourth (id conflicts) and the writes inside one mutation, so it
is atomic; it enqueues no webhook event. Then, with an embedder, the imported active memories get vectors as a
compile's do (Decision 4; the document's `embedding` is ignored, Decision 40).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import msgspec

from ..errors import EngineError, InvalidArgument
from . import compile_jobs
from .episodes import Episode, micros
from .memories import MemoryRecord
from .support import check_limit, check_offset, offset_form

FORMAT_VERSION = "1.0"
COMPILE_KIND = compile_jobs.KIND  # async compiles are jobs of the durable queue
JOB_STATUSES = ("pending", "running", "completed", "failed")
MEMORY_KINDS = ("profile_fact", "episode_summary", "procedure", "artifact_ref")
MEMORY_STATUSES = ("active", "superseded", "deleted")
GUIDANCE = "Backfill with UPDATE <table> SET tenant_id = 'your-tenant' WHERE tenant_id IS NULL"


class DocumentRejected(EngineError):
    """An import document failed one of the five checks; nothing was written. `message` is the spec's."""

    code = "document_rejected"


class ImportResult(msgspec.Struct, frozen=True):
    subject_id: str
    tenant_id: str | None
    episodes_imported: int
    memories_imported: int
    ids_preserved: bool


def checksum(episodes: Any, memories: Any) -> str:
    """Lower-hex SHA-256 of canonical JSON: keys sorted, `", "` / `": "`, non-ASCII escaped (§5.17)."""
    canonical = json.dumps({"episodes": episodes, "memories": memories}, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _seconds_form(ts: float | None) -> str | None:
    return None if ts is None else offset_form(round(ts * 1_000_000))


def _us_form(us: int | None) -> str | None:
    return None if us is None else offset_form(us)


def episode_document(e: Episode) -> dict:
    return {"id": e.id, "subject_id": e.subject_id, "tenant_id": e.tenant_id, "session_id": e.session_id,
            "source": e.source, "type": e.type, "payload": e.payload, "metadata": e.metadata,
            "provenance": e.provenance, "created_at": offset_form(e.created_at),
            "last_compiled_at": _us_form(e.last_compiled_at)}


def memory_document(m: MemoryRecord) -> dict:
    return {"id": m.id, "subject_id": m.subject_id, "tenant_id": m.tenant_id, "kind": m.kind, "content": m.content,
            "summary": m.summary, "confidence": m.confidence, "valid_from": offset_form(m.valid_from),
            "valid_to": _us_form(m.valid_to), "source_episode_ids": m.source_episode_ids, "metadata": m.metadata,
            "status": m.status, "embedding": None, "created_at": offset_form(m.created_at),
            "updated_at": offset_form(m.updated_at)}


# import: entry checks (check 5)

class _Bad(Exception):
    pass


def _time(entry: dict, name: str, where: str, optional: bool = False) -> int | None:
    if name not in entry and not optional:
        raise _Bad(f"{where} is missing '{name}'")
    return _timestamp(entry.get(name), f"{where}.{name}", optional)


def _timestamp(value: Any, where: str, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where} must be an ISO 8601 timestamp")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{where} must be an ISO 8601 timestamp") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)  # naive values are UTC (§3.4)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


def _member(entry: dict, name: str, where: str, kinds: tuple, default: Any = ..., what: str = "") -> Any:
    if name not in entry or (entry[name] is None and default is not ...):
        if default is ...:
            raise _Bad(f"{where} is missing '{name}'")
        return default
    value = entry[name]
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise _Bad(f"{where}.{name} must be {what}")
    return value


def _id(entry: Any) -> str | None:
    return entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else None


def _episode(entry: Any, where: str, tenant: str, tenant_id: str | None, subject_id: str, new_id: str) -> Episode:
    if not isinstance(entry, dict):
        raise _Bad(f"{where} must be an object")
    _member(entry, "id", where, (str,), what="a string")
    session_id = _member(entry, "session_id", where, (str,), None, "a string or null") or None
    if session_id is not None and len(session_id) > 256:
        raise _Bad(f"{where}.session_id must be at most 256 characters")
    source = _member(entry, "source", where, (str,), what="a string")
    kind = _member(entry, "type", where, (str,), what="a string")
    if not 1 <= len(source) <= 256 or not 1 <= len(kind) <= 128:
        raise _Bad(f"{where}: source must be 1–256 characters and type 1–128")
    return Episode(new_id, tenant, tenant_id, subject_id, source, kind,
                   _member(entry, "payload", where, (dict,), what="an object"),
                   _member(entry, "metadata", where, (dict,), {}, "an object"),
                   _member(entry, "provenance", where, (dict,), {}, "an object"), session_id,
                   _time(entry, "created_at", where),
                   _time(entry, "last_compiled_at", where, optional=True))


def _memory(entry: Any, where: str, tenant: str, tenant_id: str | None, subject_id: str, new_id: str,
            episode_ids: dict[str, str]) -> MemoryRecord:
    if not isinstance(entry, dict):
        raise _Bad(f"{where} must be an object")
    _member(entry, "id", where, (str,), what="a string")
    kind = _member(entry, "kind", where, (str,), what="a string")
    if kind not in MEMORY_KINDS:
        raise _Bad(f"{where}.kind must be one of {', '.join(MEMORY_KINDS)}")
    status = _member(entry, "status", where, (str,), "active", "a string")
    if status not in MEMORY_STATUSES:
        raise _Bad(f"{where}.status must be one of {', '.join(MEMORY_STATUSES)}")
    sources = _member(entry, "source_episode_ids", where, (list,), [], "a list of strings")
    if not all(isinstance(s, str) for s in sources):
        raise _Bad(f"{where}.source_episode_ids must be a list of strings")
    confidence = _member(entry, "confidence", where, (int, float), 1.0, "a number")
    return MemoryRecord(new_id, tenant, tenant_id, subject_id, kind,
                        _member(entry, "content", where, (str,), what="a string"),
                        _member(entry, "summary", where, (str,), "", "a string"), float(confidence),
                        _time(entry, "valid_from", where),
                        _time(entry, "valid_to", where, optional=True),
                        [episode_ids.get(s, s) for s in sources],
                        _member(entry, "metadata", where, (dict,), {}, "an object"), status,
                        _time(entry, "created_at", where),
                        _time(entry, "updated_at", where))


def _list(document: dict, name: str) -> list:
    value = document.get(name, [])
    return value if isinstance(value, list) else []


def _first_checks(document: dict, target_subject_id: str | None) -> str:
    """Checks 1–3, which need no data; the subject the import writes to."""
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise DocumentRejected(f"Unsupported format version: {version} (expected {FORMAT_VERSION})")
    if checksum(document.get("episodes", []), document.get("memories", [])) != document.get("checksum"):
        raise DocumentRejected("Checksum mismatch — export file may be corrupted or tampered with")
    subject_id = target_subject_id or document.get("subject_id")
    if not subject_id:
        raise DocumentRejected("No subject_id specified and none found in export document")
    return subject_id


def import_in(tx, document: dict, subject_id: str, tenant_id: str | None,
              preserve_ids: bool) -> tuple[int, list[MemoryRecord]]:
    """Checks 4 and 5 and the writes, in one mutation: (episodes written, memories written)."""
    episodes, memories = _list(document, "episodes"), _list(document, "memories")
    if preserve_ids:
        for table, entries, noun in (("episodes", episodes, "episode(s)"), ("memories", memories, "memory(ies)")):
            n = tx.support.existing_ids(table, [i for i in map(_id, entries) if i is not None])
            if n:
                raise DocumentRejected(f"ID conflict: {n} {noun} already exist. Use preserve_ids=false to generate "
                                       "new IDs, or delete existing data first.")
    try:
        if not isinstance(subject_id, str) or len(subject_id) > 256:
            raise _Bad("subject_id must be a string of 1–256 characters")
        if tenant_id is not None and (not isinstance(tenant_id, str) or not 1 <= len(tenant_id) <= 256):
            raise _Bad("tenant_id must be a string of 1–256 characters or null")
        for name in ("episodes", "memories"):
            if not isinstance(document.get(name, []), list):
                raise _Bad(f"{name} must be a list")
        new_ids = {}
        for i, entry in enumerate(episodes):
            old = _id(entry)
            if old is not None:
                if old in new_ids:
                    raise _Bad(f"episodes[{i}].id repeats an earlier episode's id")
                new_ids[old] = old if preserve_ids else str(uuid.uuid4())
        rows = [_episode(e, f"episodes[{i}]", tx.tenant, tenant_id, subject_id, new_ids.get(_id(e) or "", ""))
                for i, e in enumerate(episodes)]
        seen: set[str] = set()
        made = []
        for i, entry in enumerate(memories):
            old = _id(entry)
            if old is not None and old in seen:
                raise _Bad(f"memories[{i}].id repeats an earlier memory's id")
            seen.add(old or "")
            made.append(_memory(entry, f"memories[{i}]", tx.tenant, tenant_id, subject_id,
                                (old or "") if preserve_ids else str(uuid.uuid4()), new_ids))
    except _Bad as exc:
        raise DocumentRejected(f"Invalid document: {exc}") from None
    tx.memory.insert_episodes(rows)
    tx.memory.insert_memories(made)
    return len(rows), made


def _check_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument("event_id must be a UUID", loc=["path", "event_id"], type="uuid_parsing") from None


class Admin:
    """`embed(tenant, memories)` (the memory engine's `Memory.embed`) gives imported memories their vectors."""

    def __init__(self, store, webhooks=None, embed=None):
        self._store = store
        self._webhooks = webhooks
        self._embed = embed

    async def jobs(self, tenant: str, status: str | None = None, subject_id: str | None = None,
                   tenant_id: str | None = None, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
        """Compile jobs newest first, and how many match (the page aside)."""
        limit, offset = check_limit(limit, 100, ["query", "limit"]), check_offset(offset, ["query", "offset"])
        found, total = await self._store.support.compile_jobs(tenant, COMPILE_KIND, status, subject_id, tenant_id,
                                                              limit, offset)
        return [_job(j) for j in found], total

    async def tenant_audit(self, tenant: str) -> dict:
        episodes, memories, jobs = await self._store.support.null_tenant_rows(tenant, COMPILE_KIND)
        return {"null_tenant_rows": {"episodes": episodes, "memories": memories, "compile_jobs": jobs},
                "guidance": GUIDANCE}

    async def export(self, tenant: str, subject_id: str, tenant_id: str | None = None) -> dict | None:
        """The export document, or None when the subject has neither episodes nor memories in scope."""
        episodes, memories = await self._store.support.export(tenant, tenant_id or None, subject_id)
        if not episodes and not memories:
            return None
        e = [episode_document(x) for x in episodes]
        m = [memory_document(x) for x in memories]
        return {"format_version": FORMAT_VERSION, "exported_at": offset_form(micros(self._store.clock.now())),
                "subject_id": subject_id, "tenant_id": tenant_id or None,
                "counts": {"episodes": len(e), "memories": len(m)}, "episodes": e, "memories": m,
                "checksum": checksum(e, m)}

    async def import_document(self, tenant: str, document: dict, target_subject_id: str | None = None,
                              target_tenant_id: str | None = None, preserve_ids: bool = True) -> ImportResult:
        if not isinstance(document, dict):
            raise InvalidArgument("document must be an object", loc=["body", "document"], type="dict_type")
        subject_id = _first_checks(document, target_subject_id)
        tenant_id = target_tenant_id if target_tenant_id is not None else document.get("tenant_id")
        n, made = await self._store.submit(
            tenant, lambda tx: import_in(tx, document, subject_id, tenant_id, preserve_ids))
        if self._embed is not None:  # after the commit, as a compile does: a provider failure fails nothing
            await self._embed(tenant, made)
        return ImportResult(subject_id, tenant_id, n, len(made), preserve_ids)

    async def webhook_stats(self, tenant: str) -> dict:
        if self._webhooks is None:
            return {"pending": 0, "delivered": 0, "dead_letter": 0, "total": 0}
        s = await self._webhooks.stats(tenant)
        return {"pending": s.pending, "delivered": s.delivered, "dead_letter": s.dead_letter, "total": s.total}

    async def webhook_event(self, tenant: str, event_id: str) -> dict | None:
        event_id = _check_uuid(event_id)
        e = None if self._webhooks is None else await self._webhooks.get(tenant, event_id)
        if e is None:
            return None
        return {"id": e.id, "event": e.event, "status": e.status, "attempts": e.attempts,
                "max_attempts": e.max_attempts, "last_attempt_at": _seconds_form(e.last_attempt_at),
                "next_attempt_at": _seconds_form(e.next_attempt_at), "last_error": e.last_error,
                "http_status": e.http_status, "created_at": _seconds_form(e.created_at),
                "delivered_at": _seconds_form(e.delivered_at)}


def _job(j) -> dict:
    payload = j.payload if isinstance(j.payload, dict) else {}
    result = j.result if isinstance(j.result, dict) else {}
    return {"job_id": j.id, "subject_id": payload.get("subject_id"), "tenant_id": payload.get("tenant_id"),
            "status": j.status, "memories_created": result.get("memories_created"), "error": j.error,
            "created_at": _seconds_form(j.created_at), "started_at": _seconds_form(j.started_at),
            "completed_at": _seconds_form(j.completed_at)}
