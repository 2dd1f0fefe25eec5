"""The store contract (v2): what the engine may ask of a storage backend.

A store owns durability, revisions, the changes table and migrations. It knows nothing of HTTP and
applies no business rule. It is a set of per-capability repositories (key/value, API keys, the change
log; later leases, tokens, claims…) plus one write unit:

- **Reads are async** and may be served by any replica; they see every commit acknowledged before them.
- **Writes are mutation functions.** `submit(tenant, fn)` runs `fn(tx)` against a `WriteTxn` and answers
  only once the result is durable. The engine's functions decide what to write; the store makes each
  one atomic and numbers its change sets.
- **The serialisation rule.** Mutations of one tenant never overlap, in one process or across replicas:
  `fn` runs while its transaction holds the tenant's write lock (SQLite: the single writer; PostgreSQL:
  the tenant's revision-counter row, locked `FOR UPDATE` before `fn` runs). So a read-modify-write inside
  `fn` is atomic, and a tenant's revisions commit in order with no gap.
- **The retry rule.** A store may run `fn` more than once (a batch retried after a storage fault, a lost
  connection or a serialisation failure before commit). So `fn` reads and writes only through `tx`, has
  no other side effect, and returns a value computed from what it read; only the last run's writes and
  result count. When a commit's outcome is unknown (the connection died during COMMIT), the store does
  not retry: it raises StorageUnavailable and the caller may not assume either outcome.
- **Revisions.** `tx.new_revision()` takes the tenant's next revision; every revision taken must record
  at least one change, so the changes table holds every revision until compaction removes it.
- **Time.** `tx.now` and every expiry check come from the store's `clock`, the one the engine uses.
- **Revision and compaction information** (`log.revision`) is read from the database, never from a
  per-process cache: another replica may have moved it.
- **Commit notifications.** After each local commit the store calls `listener.committed(changes)` on
  the event loop; a store shared by several processes also calls `listener.rang(tenant, rev)` when it
  hears that another one committed (a doorbell that may be lost), and asks the feed to poll every
  `tick_seconds`. The change feed (engine/feed.py) turns both into contiguous, ordered change sets.
- **After-commit calls.** `tx.after_commit(fn)` has `fn()` called on the event loop once the mutation's
  run is durable (never for a run that failed or was undone): how a mutation wakes local work that
  must see its commit (the webhook worker).

A new capability (leases, tokens, claims…) plugs in the same way as key/value: a read repository on the
store (`store.leases`) and a write repository on the transaction (`tx.leases`), each a Protocol in this file
and one module per store; the write unit and the rules above do not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, TypeVar

from ..clock import Clock
from ..engine.types import (Change, ChangeFilter, Entry, IdempotencyRecord, KeyRecord, LeaseRecord, RevisionInfo, StateEventRecord,
                            StorageFault, TokenRecord, WebhookEvent, WebhookOutcome)

if TYPE_CHECKING:
    from ..engine.claims import Claim, Cursor, Run
    from ..engine.conversation_search import Matches
    from ..engine.conversations import Conversation, Cursor as ConversationCursor, Message
    from ..engine.jobs import Job
    from ..engine.memory import Episode, MemoryRecord
    from ..engine.sessions.model import EntityRow, MemoryRow, SessionRow
    from ..engine.memory.subjects import SubjectCount
    from .coordination_rows import CoordinationRows

T = TypeVar("T")

__all__ = ["Change", "ChangeFilter", "ChangeLog", "ClaimReads", "ClaimWrites", "CommitListener", "ConversationReads", "ConversationWrites", "Entry", "IdempotencyReads", "IdempotencyRecord", "IdempotencyWrites", "JobReads", "JobWrites", "KVReads", "KVWrites",
           "MemoryReads", "MemoryWrites", "SessionReads", "SessionWrites",
           "MemoryReads", "MemoryWrites", "SupportReads", "SupportWrites",
           "KeyRecord", "KeyRepository", "LeaseReads", "LeaseRecord", "LeaseWrites", "RevisionInfo", "StateEventRecord", "StateReads", "StateWrites", "StorageFault", "Store", "TokenCheck",
           "TokenRecord", "TokenRepository", "WebhookEvent", "WebhookOutcome", "WebhookReads", "WebhookWrites", "WriteTxn"]


# key/value


class KVReads(Protocol):
    """Reads of versioned entries (`store.kv`)."""

    async def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        """The stored row, expired or not (the engine decides what expiry means)."""

    async def get_many(self, tenant: str, namespace: str, keys: Iterable[str]) -> list[Entry | None]:
        """Point reads from one consistent snapshot, in the order asked."""

    async def scan(self, tenant: str, namespace: str, prefix: str, after: str | None, limit: int,
                   now: float) -> list[Entry]:
        """Live entries whose key starts with `prefix`, strictly after `after`, in key byte order."""

    async def history(self, tenant: str, namespace: str, key: str, before_rev: int | None,
                      limit: int) -> list[Change]:
        """Changes of one key with revision < before_rev (all when None), newest first."""

    async def due_tenants(self, now: float, limit: int) -> list[str]:
        """Tenants holding an entry whose expiry is due."""

    async def namespaces(self, tenant: str, now: float,
                         ranges: list[tuple[str, str]] | None = None) -> list[tuple[str, int]]:
        """(namespace, live keys) by namespace name: every namespace holding a live key, or, with `ranges`
        ((namespace, key prefix) pairs that do not overlap), each range's namespace with the live keys in it."""


class KVWrites(Protocol):
    """Writes of versioned entries inside a mutation (`tx.kv`); all of the transaction's tenant."""

    def get(self, namespace: str, key: str) -> Entry | None:
        """The stored row, expired or not, as this transaction sees it."""

    def put(self, entry: Entry) -> None: ...

    def delete(self, namespace: str, key: str) -> None: ...

    def expired(self, limit: int) -> list[Entry]:
        """Entries whose expiry is due at `tx.now`, oldest expiry first."""


# leases


class LeaseReads(Protocol):
    """Reads of lease rows (`store.leases`): one row per resource that ever had a lease."""

    async def get(self, tenant: str, resource: str) -> LeaseRecord | None: ...

    async def by_id(self, tenant: str, lease_id: str) -> LeaseRecord | None:
        """The lease row whose newest lease has this id (a superseded id names nothing)."""


class LeaseWrites(Protocol):
    """Lease rows inside a mutation (`tx.leases`), of the transaction's tenant. A mutation reads the row,
    decides, and raises before it writes: the row and the fencing counter change in the same atomic unit
    as the entry writes of the mutation."""

    def get(self, resource: str) -> LeaseRecord | None: ...

    def by_id(self, lease_id: str) -> LeaseRecord | None: ...

    def put(self, record: LeaseRecord) -> None: ...


# state events (AgentState states)


class StateReads(Protocol):
    """Reads of the append-only state event log (`store.states`), never compacted. `at_sequence` and
    `at_time` (ms) bound which events count (None: no bound); results are of one tenant."""

    async def last(self, tenant: str, key: str, at_sequence: int | None, at_time: int | None) -> StateEventRecord | None:
        """The key's newest event within the bounds."""

    async def of_key(self, tenant: str, key: str, after: int, limit: int) -> list[StateEventRecord]:
        """The key's events with sequence > after, ascending."""

    async def after(self, tenant: str, after: int, limit: int) -> list[StateEventRecord]:
        """Every key's events with sequence > after, ascending."""

    async def heads(self, tenant: str, before: int | None, at_sequence: int | None, at_time: int | None,
                    limit: int) -> list[StateEventRecord]:
        """Per key, its newest event within the bounds, when that is an upsert and its sequence is below
        `before`; by sequence descending."""

    async def by_sequence(self, tenant: str, sequence: int) -> StateEventRecord | None: ...

    async def by_id(self, tenant: str, event_id: str) -> StateEventRecord | None: ...


class StateWrites(Protocol):
    """The state event log inside a mutation (`tx.states`), of the transaction's tenant: append only."""

    def last(self, key: str) -> StateEventRecord | None:
        """The key's newest event, as this transaction sees it."""

    def append(self, record: StateEventRecord) -> None: ...
# claims


class ClaimReads(Protocol):
    """Reads of claims, their evidence and their verification runs (`store.claims`)."""

    async def get(self, tenant: str, claim_id: str) -> "Claim | None":
        """The claim with its evidence in input order."""

    async def exists(self, tenant: str, claim_id: str) -> bool: ...

    async def list(self, tenant: str, limit: int, cursor: "Cursor | None", order: str, subject_type: str | None,
                   subject_id: str | None) -> "list[Claim]":
        """Up to `limit` claims (without evidence) matching the filters, by (created_at, id) ascending or
        descending (`order`), strictly after `cursor` in that order."""

    async def runs(self, tenant: str, claim_id: str, limit: int, cursor: "Cursor | None", order: str) -> "list[Run]":
        """Up to `limit` runs of one claim, by (created_at, id) in `order`, strictly after `cursor`."""


class ClaimWrites(Protocol):
    """Claims inside a mutation (`tx.claims`), of the transaction's tenant."""

    def get(self, claim_id: str) -> "Claim | None":
        """The claim without its evidence."""

    def insert(self, claim: "Claim") -> None:
        """A new claim and all its evidence (up to 50 items)."""

    def add_run(self, run: "Run") -> None:
        """Store a run and make its claim's status and updated_at the run's."""
# conversations


class ConversationReads(Protocol):
    """Reads of conversations, their messages and tags (`store.conversations`). A conversation comes with
    its tags (sorted) and without messages."""

    async def get(self, tenant: str, conversation_id: str) -> "Conversation | None": ...

    async def exists(self, tenant: str, conversation_id: str) -> bool: ...

    async def id_by_external_id(self, tenant: str, external_id: str) -> str | None: ...

    async def list(self, tenant: str, limit: int, cursor: "ConversationCursor | None", order: str,
                   tag: str | None, observed: bool = False) -> "list[Conversation]":
        """Up to `limit` conversations (carrying `tag`, if given; with at least one message of an
        observation_type, if `observed`) by (updated_at, id) in `order`, strictly after `cursor` in that
        order."""

    async def many(self, tenant: str, ids: list[str]) -> "list[Conversation]":
        """Those of `ids` the tenant has, in no particular order."""

    async def messages(self, tenant: str, conversation_id: str, after_position: int, limit: int) -> "list[Message]":
        """Up to `limit` messages of one conversation with a position above `after_position`, in order."""

    async def message_position(self, tenant: str, conversation_id: str, message_id: str) -> int | None: ...

    async def all_tags(self, tenant: str) -> list[str]:
        """The distinct tags of the tenant's conversations, sorted."""

    async def contents(self, tenant: str, at: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The content of the messages at those (conversation_id, position) that exist."""

    async def search(self, tenant: str, wanted: list[str]) -> "Matches | None":
        """The tenant's messages holding every one of the distinct tokens `wanted` (§6.6; one snapshot), with
        the statistics BM25 needs; None when none does."""


class AnalyticsReads(Protocol):
    """Conversation figures added up in SQL (`store.analytics`): the tenant's conversations created in
    [start, end] ms, both inclusive, carrying every one of `tags` (distinct; none: no tag filter)."""

    async def totals(self, tenant: str, start: int, end: int, tags: list[str]) -> tuple[int, int, int]:
        """(conversations, Σ message_count, Σ token_count)."""

    async def days(self, tenant: str, start: int, end: int, tags: list[str]) -> list[tuple[int, int, int, int]]:
        """(UTC day number since the epoch, conversations, Σ message_count, Σ token_count) of each day with a
        conversation, ascending."""

    async def tags(self, tenant: str, start: int, end: int, limit: int) -> list[tuple[str, int, int, int]]:
        """(tag, conversations, Σ message_count, Σ token_count) of the `limit` tags carried by most
        conversations (ties: tag ascending)."""


class ConversationWrites(Protocol):
    """Conversations inside a mutation (`tx.conversations`), of the transaction's tenant."""

    def get(self, conversation_id: str) -> "Conversation | None": ...

    def by_external_id(self, external_id: str) -> str | None:
        """The id of the conversation holding this external id."""

    def insert(self, c: "Conversation") -> None:
        """A new conversation with its tags and all its messages (up to 1000: no parameter limit binds)."""

    def append(self, conversation_id: str, messages: "list[Message]", tokens: int, total_tokens: int, cost: int,
               now: int) -> None:
        """Store the messages and add to the counters (in SQL); `updated_at` becomes `now`."""

    def message_at(self, conversation_id: str, position: int) -> "Message | None": ...

    def remove_messages(self, conversation_id: str, from_position: int, now: int) -> tuple[int, int, int, int]:
        """Delete the messages at `from_position` and after and take them off the counters (in SQL);
        `updated_at` becomes `now`. Returns (count, token_count, total_tokens, cost) of those removed."""

    def update(self, c: "Conversation") -> None:
        """Make external_id, title, metadata and updated_at those of `c`."""

    def set_tags(self, conversation_id: str, add: list[str], remove: list[str]) -> None: ...

    def delete(self, conversation_id: str) -> bool:
        """Delete the conversation, its messages and tags; whether it existed."""


# idempotency records


class IdempotencyReads(Protocol):
    """Reads of idempotency records (`store.idempotency`), one per (tenant, scope, key)."""

    async def get(self, tenant: str, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored record, expired or not (the engine decides what expiry means)."""

    async def purge(self, now: float, limit: int) -> int:
        """Delete up to `limit` records of any tenant whose `expires_at <= now`; return how many."""


class IdempotencyWrites(Protocol):
    """Idempotency records inside a mutation (`tx.idempotency`), of the transaction's tenant: a record
    written here commits with the mutation's other writes, or not at all."""

    def get(self, scope: str, key: str) -> IdempotencyRecord | None: ...

    def put(self, record: IdempotencyRecord) -> None: ...

    def delete(self, scope: str, key: str) -> None: ...


# jobs (engine/jobs.py)


class JobReads(Protocol):
    """The job queue (`store.jobs`). Claims, renewals and outcomes are the store's own atomic writes, not
    tenant mutations: a claim takes rows of any tenant, and no two claims ever take one job."""

    async def get(self, tenant: str, job_id: str) -> "Job | None": ...

    async def list(self, tenant: str, status: str | None, kind: str | None, limit: int,
                   offset: int) -> "tuple[list[Job], int]":
        """A page of the tenant's jobs matching the filters, newest first, and the count of all matches."""

    async def claim(self, kinds: list[str], retrying: list[str], now: float, until: float, token: str,
                    limit: int) -> "list[Job]":
        """Mark up to `limit` due jobs (oldest first) running under `token` until `until`, one attempt more:
        jobs of `kinds` with attempts left that are pending, or running with a lease ended by `now` when
        their kind is in `retrying`."""

    async def abandon(self, now: float, failing: list[str], error: str) -> int:
        """Fail every running job whose lease ended by `now` and that may not run again: `error` for a kind in
        `failing`, else (no attempts left) a message saying so; return how many."""

    async def renew(self, tenant: str, job_id: str, token: str, until: float) -> bool:
        """Extend the lease of a job still running under `token`; whether it was."""

    async def finish(self, tenant: str, job_id: str, token: str, status: str, result: str | None,
                     error: str | None, now: float) -> bool:
        """Record the outcome (result as JSON text) of a job still running under `token`; whether it was."""

    async def purge(self, before: float) -> int:
        """Delete completed and failed jobs created before `before`; return how many."""

    async def count_running(self, started_before: float) -> int:
        """How many jobs of every tenant have been running since before `started_before` (readiness)."""

    async def count_pending(self) -> int:
        """How many jobs of every tenant wait to run (the metrics' queue depth)."""


class JobWrites(Protocol):
    """Jobs inside a mutation (`tx.jobs`), of the transaction's tenant: a job inserted here exists iff the
    mutation commits."""

    def exists(self, job_id: str) -> bool: ...

    def insert(self, job: "Job") -> None: ...

    def of_kind(self, kind: str) -> "list[Job]":
        """The tenant's jobs of `kind`, in no particular order."""

    def delete(self, job_ids: list[str]) -> int:
        """Delete those of the tenant's jobs; return how many there were."""
class RateWindows(Protocol):
    """Fixed-window request counters shared by every process on the store (`store.rate_windows`)."""

    async def hit(self, bucket: str, window_start: int, purge_before: int | None) -> int:
        """Count one request in (bucket, window_start) atomically and return the count after it; first
        delete every window that started before `purge_before`, when given."""


# the memory engine (Statewave)


class MemoryReads(Protocol):
    """Episodes and memories (`store.memory`). `tenant` is the Stigmer tenant; `tenant_id` the request's
    Statewave scope: a tenant id sees only its rows, None (unscoped) every row of the Stigmer tenant."""

    async def episodes(self, tenant: str, tenant_id: str | None, subject_id: str) -> "list[Episode]":
        """The subject's episodes in scope, ascending (created_at, seq)."""

    async def memories(self, tenant: str, tenant_id: str | None, subject_id: str,
                       status: str | None) -> "list[MemoryRecord]":
        """The subject's memories in scope (of that status, if given), newest first (created_at descending,
        then seq ascending)."""

    async def timeline(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int, offset: int,
                       newest_first: bool) -> "tuple[list[Episode], int, list[MemoryRecord], int]":
        """One snapshot: the episodes' window and total, the memories' (every status) window and total. A
        window is rows [offset, offset+limit) ascending, or counted back from the newest with
        `newest_first`; either way returned ascending (created_at, seq)."""

    async def subjects(self, tenant: str, tenant_id: str | None, limit: int,
                       offset: int) -> "tuple[list[SubjectCount], int]":
        """One snapshot: a page of the distinct subject ids of the episodes and memories in scope, by code
        point, with their counts, and how many there are in all."""

    async def uncompiled(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int) -> "list[Episode]":
        """The oldest `limit` episodes in scope with no `last_compiled_at`, ascending (outside any mutation:
        the LLM compiler reads them before it calls the model)."""


class MemoryWrites(Protocol):
    """Episodes and memories inside a mutation (`tx.memory`), of the transaction's Stigmer tenant."""

    def insert_episodes(self, episodes: "list[Episode]") -> None:
        """Insert in list order (so `seq` follows it)."""

    def uncompiled(self, tenant_id: str | None, subject_id: str, limit: int) -> "list[Episode]":
        """The oldest `limit` episodes in scope with no `last_compiled_at`, ascending."""

    def mark_compiled(self, episode_ids: list[str], now: int) -> None: ...

    def still_uncompiled(self, episode_ids: list[str]) -> set[str]:
        """Those of the ids that are still episodes of the tenant with no `last_compiled_at`."""

    def insert_memories(self, memories: "list[MemoryRecord]") -> None:
        """Insert in list order (so `seq` follows compiler output order)."""

    def newest_active(self, tenant_id: str | None, subject_id: str, limit: int) -> "list[MemoryRecord]":
        """The newest `limit` active memories of exactly this Statewave tenant value (None matches only
        NULL), returned in ascending order."""

    def supersede(self, valid_to: dict[str, int], now: int) -> None:
        """Mark each memory id superseded with its `valid_to` and `updated_at = now`."""

    def delete_subject(self, tenant_id: str | None, subject_id: str) -> tuple[int, int]:
        """Delete the subject's episodes and memories in scope; return how many of each."""


# semantic sessions (semvec, engine/sessions)


class SessionReads(Protocol):
    """Sessions, their memories and entities (`store.sessions`), of one tenant per call but `count`."""

    async def get(self, tenant: str, session_id: str) -> "SessionRow | None": ...

    async def count(self) -> int:
        """Sessions stored, every tenant and kind."""

    async def list(self, tenant: str, kind: str) -> "list[SessionRow]":
        """The tenant's sessions of one kind, by creation."""

    async def page(self, tenant: str, kind: str, limit: int,
                   before: "tuple[float, str] | None" = None) -> "list[SessionRow]":
        """Up to `limit` of the tenant's sessions of one kind, newest first (created_at, then id, descending),
        those strictly before `before` (created_at, session_id) when given."""

    async def memories(self, tenant: str, session_id: str) -> "list[MemoryRow]":
        """Every memory of the session, archive included, by seq."""

    async def by_hash(self, tenant: str, session_id: str, memory_hash: str) -> "list[MemoryRow]":
        """The memories with that hash, newest (seq) first."""

    async def entities(self, tenant: str, session_id: str) -> "list[EntityRow]": ...

    async def snapshot(self, tenant: str, session_id: str) -> "tuple[SessionRow | None, list[MemoryRow], list[EntityRow]]":
        """The session, its memories and entities from one consistent snapshot."""


class SessionWrites(Protocol):
    """Sessions inside a mutation (`tx.sessions`), of the transaction's tenant."""

    def get(self, session_id: str) -> "SessionRow | None": ...

    def insert(self, row: "SessionRow") -> None: ...

    def update(self, session_id: str, state: str, vector: bytes | None, checksum: str) -> None: ...

    def delete(self, session_id: str) -> bool:
        """Delete the session with its memories and entities; whether it existed."""

    def list(self, kind: str) -> "list[SessionRow]": ...

    def memories(self, session_id: str, after_rev: int = -1) -> "list[MemoryRow]":
        """The memories whose `rev` is above `after_rev`, by seq (what a process's view catches up from)."""

    def put_memories(self, memories: "list[MemoryRow]") -> None:
        """Insert, or replace by (session, id)."""

    def memory_stats(self, session_id: str, stats: list[tuple[str, str, int, int, int]]) -> None:
        """(id, tier, access_count, last_access_turn, rev) of existing memories."""

    def clear_memories(self, session_id: str) -> None: ...

    def entities(self, session_id: str) -> "list[EntityRow]": ...

    def put_entities(self, entities: "list[EntityRow]") -> None: ...

    def delete_entity(self, session_id: str, key: str) -> bool: ...

    def clear_entities(self, session_id: str) -> None: ...


# the webhook outbox


class WebhookReads(Protocol):
    """The webhook outbox (`store.webhooks`). `claim` and `settle` serve the delivery workers of every
    replica, across tenants and outside any tenant's serialisation: the claim is what keeps two workers
    from sending one event at once."""

    async def get(self, tenant: str, event_id: str) -> WebhookEvent | None: ...

    async def counts(self, tenant: str) -> tuple[dict[str, int], float | None]:
        """The tenant's events per status, and the `created_at` of its oldest pending one (None: none)."""

    async def count_pending(self) -> int:
        """How many events of every tenant wait for delivery (the metrics' backlog)."""

    async def claim(self, now: float, until: float, claim: str, limit: int) -> list[WebhookEvent]:
        """Atomically take up to `limit` due events of any tenant (pending, `next_attempt_at <= now`), oldest
        first: each gets `claim`, `last_attempt_at = now` and `next_attempt_at = until` (the claim's lease:
        an event whose worker died becomes due again then). No event is handed to two callers for one lease."""

    async def settle(self, outcomes: list[WebhookOutcome]) -> int:
        """Record each attempt's outcome (and clear the claim) if its event still carries that claim; return
        how many did (an event deleted, or re-claimed after its lease ran out, is left alone)."""

    async def purge(self, before: float, limit: int) -> int:
        """Delete up to `limit` settled events (delivered or dead-lettered) of any tenant created before
        `before`; return how many went. Pending events are never purged."""


class WebhookWrites(Protocol):
    """The outbox inside a mutation (`tx.webhooks`), of the transaction's tenant: an event written here
    commits with the change it reports, or not at all."""

    def insert(self, event: WebhookEvent) -> None: ...

    def delete_subject(self, subject_id: str, tenant_id: str | None) -> int:
        """Delete the events about one subject (with that body `tenant_id`; every one for None), whatever their
        status; return how many."""


# the Statewave support layer and admin (engine/memory/support.py, admin.py)


class SupportReads(Protocol):
    """Resolutions and the reads of the support figures and admin (`store.support`), in a request's
    Statewave scope as MemoryReads has it; reads that belong together share one snapshot."""

    async def resolutions(self, tenant: str, tenant_id: str | None, subject_id: str, status: str | None,
                          limit: int, offset: int) -> list: ...

    async def sla_inputs(self, tenant: str, tenant_id: str | None, subject_id: str, episodes: int,
                         resolutions: int) -> tuple[list, list]:
        """The newest `episodes` episodes (ascending) and the `resolutions` most recently updated."""

    async def compile_jobs(self, tenant: str, kind: str, status: str | None, subject_id: str | None,
                           tenant_id: str | None, limit: int, offset: int) -> tuple[list, int]: ...

    async def export(self, tenant: str, tenant_id: str | None, subject_id: str) -> tuple[list, list]:
        """A subject's episodes and memories, both ascending."""

    async def null_tenant_rows(self, tenant: str, kind: str) -> tuple[int, int, int]: ...


class SupportWrites(Protocol):
    """Resolutions and health-state records inside a mutation (`tx.support`), of the transaction's tenant,
    and the reads a mutation makes before it decides. An upsert key's Statewave tenant value is exact."""

    def resolution(self, tenant_id: str | None, subject_id: str, session_id: str): ...

    def resolutions(self, tenant_id: str | None, subject_id: str, status: str | None, limit: int,
                    offset: int) -> list: ...

    def insert_resolution(self, r) -> None: ...

    def update_resolution(self, r) -> None: ...

    def episode_window(self, tenant_id: str | None, subject_id: str, limit: int) -> list: ...

    def facts(self, tenant_id: str | None, subject_id: str, limit: int) -> list: ...

    def health_state(self, tenant_id: str | None, subject_id: str) -> str | None: ...

    def put_health_state(self, tenant_id: str | None, subject_id: str, state: str, score: int, now: int,
                         exists: bool) -> None: ...

    def delete_subject(self, tenant_id: str | None, subject_id: str) -> int:
        """Delete the subject's resolutions and health-state record in scope; return the resolutions'."""

    def existing_ids(self, table: str, ids: list[str]) -> int: ...


# the change log


class ChangeLog(Protocol):
    """The changes table (`store.log`): the single source of every watch, stream and replica fan-out."""

    async def revision(self, tenant: str) -> RevisionInfo:
        """The newest committed revision and the compaction point, as the database holds them."""

    async def revisions(self, tenants: Iterable[str]) -> dict[str, int]:
        """The newest committed revision of each tenant named (0 for one that never wrote)."""

    async def read(self, flt: ChangeFilter, after_rev: int, limit: int) -> list[Change]:
        """Changes matching `flt` with revision > after_rev, in revision order (then write order)."""

    async def compact(self, older_than: float) -> int:
        """Remove whole revisions whose changes are all older than `older_than`, moving each tenant's
        compaction point in the same transaction; return how many change rows went."""


# API keys


class KeyRepository(Protocol):
    """Tenants and API keys (`store.keys`)."""

    async def any(self) -> bool:
        """Whether any key was ever created (revoked ones count: open mode never comes back)."""

    async def by_digest(self, digest: bytes) -> KeyRecord | None: ...

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        """Keys of one tenant (every tenant for None), oldest first."""

    async def create(self, record: KeyRecord) -> KeyRecord:
        """Store a key, creating its tenant if new."""

    async def revoke(self, key_id: str, tenant: str | None, now: float) -> KeyRecord | None:
        """Mark a key revoked (idempotent); None if no such key (in `tenant`, when given)."""

    async def touch(self, key_ids: list[str], now: float) -> None:
        """Record that these keys were just used."""

    async def tenants(self) -> list[str]: ...


# capability tokens

TokenCheck = tuple[str, bytes, str, tuple[str, ...], tuple[str, ...], "float | None", "float | None", bool]


class TokenRepository(Protocol):
    """Capability tokens (`store.tokens`), read from the database on every call: a revocation made by any
    replica is seen by the next read of every other."""

    async def check(self, digest: bytes) -> TokenCheck | None:
        """What authenticating the token with this digest needs, in one statement: (id, digest, tenant,
        scopes, prefixes, expires_at, revoked_at, whether its root API key is revoked)."""

    async def get(self, tenant: str, token_id: str) -> TokenRecord | None: ...

    async def list(self, tenant: str) -> list[TokenRecord]:
        """The tenant's tokens that are not revoked, oldest first."""

    async def create(self, record: TokenRecord) -> bool:
        """Store a token unless one of its ancestors (`record.ancestors()`) is missing or revoked (False).
        Serialised against `revoke`, so a child minted while its parent is revoked is refused or revoked."""

    async def revoke(self, tenant: str, token_id: str, now: float) -> TokenRecord | None:
        """Revoke a token and every descendant in one statement (idempotent: an earlier revocation time
        stays); the token as it now is, or None if the tenant has no such token."""

    async def touch(self, token_ids: list[str], now: float) -> None:
        """Record that these tokens were just used."""


# the write unit


class WriteTxn(Protocol):
    """What a mutation function sees: one atomic unit of one tenant, committed durably or not at all."""

    tenant: str
    now: float  # the store clock's time when this run began
    kv: KVWrites
    leases: LeaseWrites
    states: StateWrites
    claims: ClaimWrites
    conversations: ConversationWrites
    idempotency: IdempotencyWrites
    jobs: JobWrites
    webhooks: WebhookWrites
    memory: MemoryWrites
    sessions: SessionWrites
    support: SupportWrites
    coordination: "CoordinationRows"  # semvec clusters, regions, observer, network: one class for both stores

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn()` on the event loop once this run's writes are durable; never if it fails or is undone."""

    def new_revision(self) -> int:
        """Take the tenant's next revision for a change set of this mutation (once per change set)."""

    def record(self, change: Change) -> None:
        """Append a change row; it reaches watchers after commit."""


class CommitListener(Protocol):
    def committed(self, changes: list[Change]) -> None:
        """A local commit's changes, on the event loop, in revision order per tenant."""

    def rang(self, tenant: str, rev: int) -> None:
        """Another process committed the tenant's revision `rev` (a hint: it may come late or never)."""


class Store(Protocol):
    clock: Clock
    kv: KVReads
    keys: KeyRepository
    tokens: TokenRepository
    leases: LeaseReads
    states: StateReads
    claims: ClaimReads
    conversations: ConversationReads
    analytics: AnalyticsReads
    idempotency: IdempotencyReads
    jobs: JobReads
    webhooks: WebhookReads
    memory: MemoryReads
    sessions: SessionReads
    buckets: Any  # PostgreSQL: token buckets the replicas share (store/postgres/buckets.py); None on SQLite
    rate_windows: RateWindows
    support: SupportReads
    log: ChangeLog
    tick_seconds: float | None  # how often the change feed polls revisions; None when every commit is local
    observe_group: Callable[[int, float], None] | None  # told each write group's size and time (metrics); set before open()

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, tenant: str, fn: Callable[[WriteTxn], T]) -> T:
        """Run `fn` under the tenant's serialisation; return its result once durable, or raise what it
        raised (its writes undone). See the serialisation and retry rules above."""

    def set_listener(self, listener: CommitListener) -> None: ...

    async def ping(self) -> None:
        """A trivial query; raises if the database cannot answer."""

    def health(self) -> StorageFault | None:
        """The active storage fault, if any (no I/O)."""

    async def probe(self) -> None:
        """Commit one tiny durable write, to learn whether a fault has cleared; raises StorageFull or
        StorageUnavailable while it has not."""

    def describe(self) -> dict[str, Any]:
        """What the store is, for /v1/settings and logs (never a password)."""
