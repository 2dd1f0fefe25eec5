"""`Client`: the blocking client over httpx.Client."""

from __future__ import annotations

import datetime
import time
from typing import Any, Iterable, Iterator, Mapping

import httpx

from . import _base as b
from .models import (
    UNSET, ChangeSet, Claim, ClaimPage, ClaimRun, ClaimRunPage, Compare, Conversation, ConversationPage, CreatedToken,
    Deleted, Entry, HistoryPage, Lease, Memory, Message, MessagePage, Op, Page, PollResult, Revision, SearchPage, Token,
    TxnResult
)


class Client(b.BaseClient):
    """Blocking Stigmer client. Thread-safe (one connection pool); use as a context manager or `close()`.

    `get` raises `NotFoundError` for an absent key (use `batch_get` to read maybe-absent keys as None).
    """

    def __init__(self, url: str | None = None, *, timeout: float | httpx.Timeout = 10.0, retry: b.Retry | None = None,
                 headers: Mapping[str, str] | None = None, watch_read_timeout: float = 45.0,
                 transport: httpx.BaseTransport | None = None, api_key: str | None = None):
        super().__init__(url, timeout, retry, headers, watch_read_timeout, api_key)
        self._http = httpx.Client(base_url=self.url, timeout=self.timeout, headers=self.headers, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, call: b.Call, timeout: httpx.Timeout | None = None,
              idempotency_key: str | None = None) -> Any:
        call = b.keyed(call, idempotency_key)
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, params=call.params, headers=call.headers,
                                              content=call.content, timeout=timeout or self.timeout)
            except httpx.TransportError as exc:
                if not call.may_retry(attempt, self.retry, exc=exc):
                    raise b.transport_error(exc) from exc
            else:
                if not call.may_retry(attempt, self.retry, response=response):
                    return call.parse(response)
            time.sleep(self.retry.delay(attempt))
            attempt += 1

    # keys

    def get(self, namespace: str, key: str) -> Entry:
        """The key's entry; raises NotFoundError when it is absent (or expired)."""
        return self._call(b.get(namespace, key))

    def put(self, namespace: str, key: str, value: Any, *, ttl: float | None = None, if_version: int | None = None,
            create_only: bool = False, fence: Lease | str | None = None, idempotency_key: str | None = None) -> Entry:
        """Write a JSON value. `if_version`: only over that version (VersionConflictError otherwise);
        `create_only`: only if absent. The returned entry carries `value`."""
        return self._call(b.put(namespace, key, value, ttl, if_version, create_only, fence),
                          idempotency_key=idempotency_key)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None,
               fence: Lease | str | None = None, idempotency_key: str | None = None) -> Deleted:
        return self._call(b.delete(namespace, key, if_version, fence), idempotency_key=idempotency_key)

    def incr(self, namespace: str, key: str, amount: int | float = 1, *, field: str | None = None,
             path: list[str] | None = None, ttl: float | None = None, if_version: int | None = None,
             fence: Lease | str | None = None, idempotency_key: str | None = None) -> Entry:
        """Add `amount` to the number at the key (or at `field` / `path` inside an object); absent counts as 0."""
        return self._call(b.patch_op(namespace, key, b.incr_body(amount, field, path), ttl, if_version, fence),
                          idempotency_key=idempotency_key)

    def merge(self, namespace: str, key: str, value: Mapping[str, Any], *, deep: bool = False,
              ttl: float | None = None, if_version: int | None = None,
              fence: Lease | str | None = None, idempotency_key: str | None = None) -> Entry:
        """Merge members into the object at the key; `deep` merges nested objects (null then deletes)."""
        return self._call(b.patch_op(namespace, key, b.merge_body(value, deep), ttl, if_version, fence),
                          idempotency_key=idempotency_key)

    def append(self, namespace: str, key: str, value: Any, *, max_items: int | None = None,
               ttl: float | None = None, if_version: int | None = None,
               fence: Lease | str | None = None, idempotency_key: str | None = None) -> Entry:
        """Append to the list at the key, keeping the newest `max_items`."""
        return self._call(b.patch_op(namespace, key, b.append_body(value, max_items), ttl, if_version, fence),
                          idempotency_key=idempotency_key)

    def patch(self, namespace: str, key: str, ops: Iterable[Mapping[str, Any]], *, ttl: float | None = None,
              if_version: int | None = None, fence: Lease | str | None = None,
              idempotency_key: str | None = None) -> Entry:
        """Apply an RFC 6902 JSON Patch atomically (PatchFailedError if a `test` fails)."""
        return self._call(b.patch_op(namespace, key, b.patch_body(ops), ttl, if_version, fence),
                          idempotency_key=idempotency_key)

    def batch_get(self, namespace: str, keys: Iterable[str]) -> list[Entry | None]:
        """Read several keys from one snapshot; None for each absent key."""
        return self._call(b.batch_get(namespace, keys))

    def list_page(self, namespace: str, *, prefix: str | None = None, cursor: str | None = None,
                  limit: int | None = None, values: bool = True, start_after: str | None = None) -> Page:
        """One page of live entries by key byte order, after `cursor` (or after the key `start_after`)."""
        return self._call(b.list_page(namespace, prefix, cursor, limit, values, start_after))

    def list(self, namespace: str, *, prefix: str | None = None, page_size: int | None = None,
             values: bool = True) -> Iterator[Entry]:
        """Every live entry (by key byte order), fetching pages as it goes."""
        cursor = None
        while True:
            page = self.list_page(namespace, prefix=prefix, cursor=cursor, limit=page_size, values=values)
            yield from page.entries
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def history(self, namespace: str, key: str, *, before: int | None = None, limit: int | None = None) -> HistoryPage:
        return self._call(b.history(namespace, key, before, limit))

    def txn(self, compare: Iterable[Compare | Mapping[str, Any]] = (),
            ops: Iterable[Op | Mapping[str, Any]] = (), *,
            fence: Lease | str | None = None, idempotency_key: str | None = None) -> TxnResult:
        """All compares must hold (CompareFailedError otherwise), then all ops apply under one revision."""
        return self._call(b.txn(compare, ops, fence), idempotency_key=idempotency_key)

    def revision(self) -> Revision:
        return self._call(b.revision())

    # leases

    def acquire_lease(self, resource: str, holder: str, *, ttl: float | None = None, wait: float | None = None,
                      idempotency_key: str | None = None) -> Lease:
        """Take the resource's lease (LeaseConflictError while another is active). `wait`: queue up to that
        many seconds for it, first come first served."""
        return self._call(b.acquire_lease(resource, holder, ttl, wait),
                          b.watch_timeout(self.timeout, (wait or 0) + self.timeout.read) if wait else None,
                          idempotency_key=idempotency_key)

    def renew_lease(self, resource: str, lease_id: str | None = None, *, fencing_token: int | None = None,
                    ttl: float | None = None, idempotency_key: str | None = None) -> Lease:
        """Extend the newest lease to now + ttl (NotFoundError once superseded, LeaseExpiredError once expired)."""
        return self._call(b.renew_lease(resource, lease_id, fencing_token, ttl), idempotency_key=idempotency_key)

    def release_lease(self, resource: str, lease_id: str | None = None, *, fencing_token: int | None = None,
                      idempotency_key: str | None = None) -> Lease:
        return self._call(b.release_lease(resource, lease_id, fencing_token), idempotency_key=idempotency_key)

    def get_lease(self, resource: str) -> Lease:
        """The resource's newest lease, active or not (NotFoundError if it never had one)."""
        return self._call(b.get_lease(resource))

    def search_memories(self, subject_id: str, *, q: str | None = None, kind: str | None = None,
                    limit: int | None = None, tenant_id: str | None = None) -> list[Memory]:
        """A subject's active memories (GET /v1/memories/search): newest first, or ranked by `q`; `tenant_id`
        is the Statewave tenant (X-Tenant-ID) inside the caller's own."""
        return self._call(b.search_memories(subject_id, q, kind, limit, tenant_id, self.api_key))

    # capability tokens

    def mint_token(self, name: str, scopes: Iterable[str], *, prefixes: Iterable[str] | None = None,
                   expires_in: float | None = None, expires_at: datetime.datetime | float | None = None) -> CreatedToken:
        """Mint a capability token within this client's credential (a child of it when that is a token);
        the secret is in the result only. Prefixes and expiry left out are inherited (docs/tokens.md)."""
        return self._call(b.mint_token(name, scopes, prefixes, expires_in, expires_at))

    def list_tokens(self) -> list[Token]:
        """The tenant's tokens that are not revoked (those this credential may see), oldest first."""
        return self._call(b.list_tokens())

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token and every token minted from it, at once (idempotent)."""
        return self._call(b.revoke_token(token_id))
    # claims

    def create_claim(self, subject_type: str, subject_id: str, statement: str,
                     evidence: Iterable[Mapping[str, Any]]) -> Claim:
        """A claim with 1-50 evidence items (dicts: `kind` and its members, docs/claims.md); status pending."""
        return self._call(b.create_claim(subject_type, subject_id, statement, evidence))

    def get_claim(self, claim_id: str) -> Claim:
        """The claim and its evidence (NotFoundError if there is none)."""
        return self._call(b.get_claim(claim_id))

    def list_claims(self, *, limit: int | None = None, cursor: str | None = None, order: str | None = None,
                    subject_type: str | None = None, subject_id: str | None = None) -> ClaimPage:
        """Claims without evidence by (created_at, id), newest first unless `order="asc"`."""
        return self._call(b.list_claims(limit, cursor, order, subject_type, subject_id))

    def verify_claim(self, claim_id: str) -> ClaimRun:
        """Check every evidence item now; the run is kept and the claim takes its status."""
        return self._call(b.verify_claim(claim_id))

    def claim_runs(self, claim_id: str, *, limit: int | None = None, cursor: str | None = None,
                   order: str | None = None) -> ClaimRunPage:
        """Every verification run of the claim, newest first unless `order="asc"`."""
        return self._call(b.claim_runs(claim_id, limit, cursor, order))

    # conversations

    def create_conversation(self, *, external_id: str | None = None, title: str | None = None,
                            metadata: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None,
                            messages: Iterable[Mapping[str, Any]] | None = None,
                            idempotency_key: str | None = None) -> Conversation:
        """A new conversation with its messages (dicts: `role`, `content`, optional members; up to 1000) and
        tags, created at once (ConflictError when `external_id` is taken)."""
        return self._call(b.create_conversation(external_id, title, metadata, tags, messages),
                          idempotency_key=idempotency_key)

    def get_conversation(self, conversation_id: str, *, messages: bool = True) -> Conversation:
        """The conversation and its first 1000 messages (none with `messages=False`); NotFoundError."""
        return self._call(b.get_conversation(conversation_id, messages))

    def get_conversation_by_external_id(self, external_id: str, *, messages: bool = True) -> Conversation:
        """The conversation with this external id and all its messages; NotFoundError."""
        return self._call(b.conversation_by_external_id(external_id, messages))

    def list_conversations(self, *, limit: int | None = None, cursor: str | None = None, order: str | None = None,
                           tag: str | None = None) -> ConversationPage:
        """Conversations without messages by (updated_at, id), newest first unless `order="asc"`."""
        return self._call(b.list_conversations(limit, cursor, order, tag))

    def search_conversations(self, q: str, *, limit: int | None = None, cursor: str | None = None) -> SearchPage:
        """Conversations whose messages hold every word of `q` (whole words, any case), best match first (BM25),
        each with a snippet and where its words are in it."""
        return self._call(b.search_conversations(q, limit, cursor))

    def update_conversation(self, conversation_id: str, *, title: str | None = UNSET, metadata: Any = UNSET,
                            external_id: str | None = UNSET, idempotency_key: str | None = None) -> Conversation:
        """Change the members given (None clears one); the answer has no messages."""
        return self._call(b.update_conversation(conversation_id, {"title": title, "metadata": metadata,
                                                                  "external_id": external_id}),
                          idempotency_key=idempotency_key)

    def delete_conversation(self, conversation_id: str, *, idempotency_key: str | None = None) -> None:
        self._call(b.delete_conversation(conversation_id), idempotency_key=idempotency_key)

    def append_messages(self, conversation_id: str, messages: Iterable[Mapping[str, Any]], *,
                        idempotency_key: str | None = None) -> list[Message]:
        """Append 1-1000 messages at once; returns them as stored."""
        return self._call(b.append_messages(conversation_id, messages), idempotency_key=idempotency_key)

    def list_messages(self, conversation_id: str, *, limit: int | None = None, cursor: str | None = None,
                      last: int | None = None) -> MessagePage:
        """A page of messages in order, after `cursor`, or from the `last` N."""
        return self._call(b.list_messages(conversation_id, limit, cursor, last))

    def pop_message(self, conversation_id: str, *, idempotency_key: str | None = None) -> Message | None:
        """Remove and return the last message (None when there is none)."""
        return self._call(b.pop_message(conversation_id), idempotency_key=idempotency_key)

    def clear_messages(self, conversation_id: str, *, idempotency_key: str | None = None) -> int:
        """Remove every message (the conversation stays); how many went."""
        return self._call(b.clear_messages(conversation_id), idempotency_key=idempotency_key)

    def conversation_tags(self, conversation_id: str) -> list[str]:
        return self._call(b.conversation_tags(conversation_id))

    def add_conversation_tags(self, conversation_id: str, tags: Iterable[str]) -> list[str]:
        """Add tags (existing ones ignored); all the conversation's tags, sorted."""
        return self._call(b.add_conversation_tags(conversation_id, tags))

    def remove_conversation_tag(self, conversation_id: str, tag: str) -> list[str]:
        return self._call(b.remove_conversation_tag(conversation_id, tag))

    def export_conversations(self, *, limit: int | None = None) -> Iterator[Conversation]:
        """Every conversation with all its messages, newest first, streamed one at a time."""
        with self._http.stream("GET", "/v1/conversations:export", params=b.export_params(limit)) as response:
            if not response.is_success:
                response.read()
                raise b.error_from_response(response)
            for line in response.iter_lines():
                c = b.export_line(line)
                if c is not None:
                    yield c

    # changes

    def poll(self, *, index: int, namespace: str | None = None, prefix: str | None = None, key: str | None = None,
             wait: float = 30.0, prev_value: bool = False) -> PollResult:
        """Long-poll: change sets after revision `index`, waiting up to `wait` seconds for the first."""
        return self._call(b.poll(namespace, prefix, key, index, wait, prev_value),
                          b.watch_timeout(self.timeout, wait + self.timeout.read))

    def watch(self, namespace: str | None = None, prefix: str | None = None, key: str | None = None,
              from_revision: int | None = None, prev_value: bool = False) -> Iterator[ChangeSet]:
        """Change sets in revision order, from `from_revision` (inclusive) or from now. Reconnects by itself
        (Last-Event-ID, backoff) without losing or repeating any; raises CompactedError when the history
        it needs is gone. Stop by breaking out of the loop."""
        state = self._watch_state(namespace, prefix, key, from_revision, prev_value)
        timeout = b.watch_timeout(self.timeout, self.watch_read_timeout)
        while True:
            exc: BaseException | None = None
            try:
                with self._http.stream("GET", "/v1/watch", params=state.params(), headers=state.headers(),
                                       timeout=timeout) as response:
                    if not response.is_success:
                        response.read()
                    state.connected(response)
                    for line in response.iter_lines():
                        cs = state.feed(line)
                        if cs is not None:
                            yield cs
            except (httpx.TransportError, b._Retryable) as e:
                exc = e
            time.sleep(state.dropped(exc))
