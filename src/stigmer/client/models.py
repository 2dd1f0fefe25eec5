"""Typed results of the Stigmer API (msgspec Structs, decoded straight from response bytes)."""

from __future__ import annotations

import datetime
from typing import Any, Literal

import msgspec

UNSET: Any = msgspec.UNSET


class Entry(msgspec.Struct, frozen=True):
    """A live key. `value` is None on entries listed with `values=False`."""

    namespace: str
    key: str
    version: int
    create_revision: int
    mod_revision: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    expires_at: datetime.datetime | None = None
    value: Any = None

    @property
    def etag(self) -> str:
        return f'"{self.version}.{self.mod_revision}"'


class Lease(msgspec.Struct, frozen=True):
    """A resource's newest lease. Pass it (or its `fence`) as `fence=` to writes made under it."""

    resource: str
    lease_id: str
    holder: str
    fencing_token: int
    fence: str
    active: bool
    created_at: datetime.datetime
    renewed_at: datetime.datetime
    expires_at: datetime.datetime
    released_at: datetime.datetime | None = None


class Token(msgspec.Struct, frozen=True):
    """A capability token as the server shows it (never its secret). `active` is False once revoked; an
    expired token stays active in this sense and is refused all the same."""

    id: str
    tenant: str
    name: str
    key_prefix: str
    scopes: list[str]
    prefixes: list[str]
    parent_id: str | None
    key_id: str | None
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    active: bool


class CreatedToken(msgspec.Struct, frozen=True):
    """A freshly minted token and its secret (`as_cap_…`), shown only this once."""

    token: Token
    secret: str


class Deleted(msgspec.Struct, frozen=True):
    """What a delete returns: the revision of the delete and the version the key had."""

    deleted: bool
    revision: int
    version: int


class Change(msgspec.Struct, frozen=True):
    """One key's change. `value` is None for `delete` and `expire`; `version` is 0 then."""

    type: Literal["put", "delete", "expire"]
    namespace: str
    key: str
    value: Any
    version: int
    revision: int
    ts: datetime.datetime
    prev_value: Any = None


class ChangeSet(msgspec.Struct, frozen=True):
    """Every matching change committed under one revision."""

    revision: int
    changes: list[Change]


class Page(msgspec.Struct, frozen=True):
    """One page of `list`; pass `next_cursor` back as `cursor` (None: no more pages)."""

    entries: list[Entry]
    next_cursor: str | None


class HistoryPage(msgspec.Struct, frozen=True):
    """Past changes of one key, newest first; pass `next_before` back as `before` for older ones."""

    history: list[Change]
    next_before: int | None


class TxnResult(msgspec.Struct, frozen=True):
    """The transaction's revision (0 if it wrote nothing) and one Entry or Deleted per op."""

    revision: int
    results: list[Entry | Deleted]


class Revision(msgspec.Struct, frozen=True):
    revision: int
    compacted_revision: int


class PollResult(msgspec.Struct, frozen=True):
    """A long-poll answer: the current revision and the change sets after the index asked for."""

    revision: int
    events: list[ChangeSet]


class Compare(msgspec.Struct, frozen=True, omit_defaults=True):
    """A transaction guard: every given field must hold. `version=0` means absent."""

    namespace: str
    key: str
    version: int | None = None
    exists: bool | None = None
    value: Any = UNSET


class Op(msgspec.Struct, frozen=True, omit_defaults=True):
    """One transaction op: `op` is put, delete, incr, merge, append or patch; `version` guards it."""

    op: Literal["put", "delete", "incr", "merge", "append", "patch"]
    namespace: str
    key: str
    value: Any = UNSET
    ttl: float | None | msgspec.UnsetType = UNSET
    amount: int | float | msgspec.UnsetType = UNSET
    field: str | None = None
    path: list[str] | None = None
    deep: bool = False
    max: int | None = None
    patch: list[dict[str, Any]] | None = None
    version: int | None = None


class Evidence(msgspec.Struct, frozen=True):
    """One evidence item of a claim. `source` is `<namespace>/<key>` for key_value (also in `namespace`, `key`)."""

    id: str
    kind: Literal["text_hash", "json_value", "state_event", "key_value"]
    source: str
    created_at: datetime.datetime
    data: Any = None
    hash: str | None = None
    json_path: str | None = None
    expected_value: Any = None
    namespace: str | None = None
    key: str | None = None


class Claim(msgspec.Struct, frozen=True):
    """A claim; `evidence` is empty on listed claims (get_claim has it, in input order)."""

    id: str
    subject_type: str
    subject_id: str
    statement: str
    status: Literal["pending", "verified", "failed"]
    created_at: datetime.datetime
    updated_at: datetime.datetime
    evidence: list[Evidence] = []


class ClaimResult(msgspec.Struct, frozen=True):
    evidence_id: str
    kind: str
    source: str
    passed: bool
    message: str


class ClaimRun(msgspec.Struct, frozen=True):
    """One verification of a claim: a result per evidence item, in evidence order."""

    id: str
    claim_id: str
    status: Literal["verified", "failed"]
    results: list[ClaimResult]
    created_at: datetime.datetime


class ClaimPage(msgspec.Struct, frozen=True):
    """One page of `list_claims`; pass `next_cursor` back as `cursor` (None: no more pages)."""

    claims: list[Claim]
    next_cursor: str | None


class ClaimRunPage(msgspec.Struct, frozen=True):
    """One page of `claim_runs`; pass `next_cursor` back as `cursor` (None: no more pages)."""

    runs: list[ClaimRun]
    next_cursor: str | None


class Message(msgspec.Struct, frozen=True):
    """One message of a conversation; `position` is its 0-based place in it."""

    id: str
    conversation_id: str
    position: int
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    created_at: datetime.datetime
    metadata: dict[str, Any] | None = None
    token_count: int = 0
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_microdollars: int | None = None
    parent_message_id: str | None = None
    observation_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    status: str | None = None
    level: str | None = None


class Conversation(msgspec.Struct, frozen=True):
    """A conversation; `messages` is empty where they were not asked for (lists, `messages=False`)."""

    id: str
    external_id: str | None
    title: str | None
    metadata: dict[str, Any] | None
    tags: list[str]
    message_count: int
    token_count: int
    total_tokens: int
    total_cost_microdollars: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    messages: list[Message] = []


class ConversationPage(msgspec.Struct, frozen=True):
    """One page of `list_conversations`; pass `next_cursor` back as `cursor` (None: no more pages)."""

    conversations: list[Conversation]
    next_cursor: str | None


class SearchHit(msgspec.Struct, frozen=True):
    """A conversation matching a search: its best message's snippet, and the [start, end) code-point offsets
    of the query's words in it."""

    id: str
    title: str | None
    snippet: str
    highlights: list[tuple[int, int]]
    message_count: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


class SearchPage(msgspec.Struct, frozen=True):
    """One page of `search_conversations`, best match first; pass `next_cursor` back as `cursor`."""

    hits: list[SearchHit]
    next_cursor: str | None


class MessagePage(msgspec.Struct, frozen=True):
    """One page of `list_messages`; pass `next_cursor` back as `cursor` (None: no more pages)."""

    messages: list[Message]
    next_cursor: str | None = None


__all__ = ["Entry", "Deleted", "Change", "ChangeSet", "Page", "HistoryPage", "TxnResult", "Revision",
           "PollResult", "Compare", "Op", "Evidence", "Claim", "ClaimResult", "ClaimRun", "ClaimPage", "ClaimRunPage",
           "Message", "Conversation", "ConversationPage", "MessagePage", "SearchHit", "SearchPage"]


class Memory(msgspec.Struct, frozen=True):
    """A memory of the memory runtime (the Statewave surface, docs/memory.md): what was compiled from a
    subject's episodes."""

    id: str
    subject_id: str
    kind: str
    content: str
    summary: str
    confidence: float
    valid_from: datetime.datetime
    source_episode_ids: list[str]
    metadata: dict[str, Any]
    status: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    valid_to: datetime.datetime | None = None
