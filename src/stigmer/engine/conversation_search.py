"""Ranked full-text search over conversation messages (AgentState §5.6.3, §6.6; D6). docs/search.md.

Rules:
- a token is a maximal run of Unicode letters and digits (categories L*, N*), compared after str.casefold();
  everything else separates tokens, so whatever a user types is literal text, never query syntax;
- a message matches iff it holds every distinct token of the query as a whole token; a conversation matches
  iff one of its messages does (titles and metadata are not searched);
- a message's score is BM25 (k1 = 1.2, b = 0.75, Lucene's IDF) over the tenant's own messages only; a
  conversation's is its best message's; order: score desc, updated_at desc, id desc;
- the snippet comes from the best message (ties: the earliest), around the first query token in it.

The store finds the matching messages and the tenant's statistics (`store.conversations.search`); the
scores, the order, the page and the snippets are computed here, the same for both stores.
"""

from __future__ import annotations

import heapq
import math
import re
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import InvalidArgument

if TYPE_CHECKING:
    from ..store.base import Store

K1 = 1.2
B = 0.75
MAX_LIMIT = 100
SNIPPET_BEFORE = 40  # characters kept before the first occurrence
SNIPPET_LENGTH = 200
ELLIPSIS = "\u2026"

# `[^\W_]` is exactly the characters of categories L* and N* (tests/stores/test_conversation_search.py checks it).
_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """The §6.6 tokens of `text`, case-folded, in order (repeats kept)."""
    return [m.group().casefold() for m in _TOKEN.finditer(text)]


class SearchHit(msgspec.Struct, frozen=True):
    id: str
    title: str | None
    snippet: str
    message_count: int
    created_at: int  # ms
    updated_at: int  # ms


class Matches(msgspec.Struct, frozen=True):
    """What a store finds for some distinct query tokens in one tenant (`store.conversations.search`)."""

    messages: int  # N: the tenant's messages
    length: int  # the tokens of all the tenant's messages (avgdl = length / messages)
    df: list[int]  # per query token: the tenant's messages holding it
    rows: list[tuple[str, int, int, tuple[int, ...]]]  # every message holding all of them:
    # (conversation_id, position, its length in tokens, the count of each query token in it)


def bm25(matches: Matches) -> list[tuple[str, int, float]]:
    """(conversation_id, position, score) of each matching message:
    Σ over the query tokens of idf · tf · (k1 + 1) / (tf + k1 · (1 − b + b · length / avgdl))."""
    n, avgdl = matches.messages, matches.length / matches.messages
    idf = [math.log(1 + (n - df + 0.5) / (df + 0.5)) for df in matches.df]
    if len(idf) == 1:  # the common case, without the inner loop (the same floats)
        w = idf[0]
        return [(c, p, w * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avgdl)))
                for c, p, length, (tf,) in matches.rows]
    out = []
    for conversation_id, position, length, tfs in matches.rows:
        norm = K1 * (1 - B + B * length / avgdl)  # written as documented: equal inputs, equal floats
        score = 0.0
        for w, tf in zip(idf, tfs):
            if tf:  # an absent term adds exactly 0.0: skipping it leaves the float unchanged
                score += w * tf * (K1 + 1) / (tf + norm)
        out.append((conversation_id, position, score))
    return out


def snippet(content: str, wanted: set[str]) -> str:
    """200 characters of `content` from 40 before the first whole-token occurrence of a wanted token.
    Positions are in characters of the original text (case folding may change a token's length)."""
    p = next((m.start() for m in _TOKEN.finditer(content) if m.group().casefold() in wanted), 0)
    start = max(0, p - SNIPPET_BEFORE)
    end = start + SNIPPET_LENGTH
    return (ELLIPSIS if start else "") + content[start:end] + (ELLIPSIS if end < len(content) else "")


def highlights(snippet_text: str, wanted: set[str]) -> list[tuple[int, int]]:
    """The (start, end) code point offsets of every whole token of a snippet that is a wanted token: what a
    client marks. A token touching an ellipsis the snippet added may be cut (`fox` of `foxes`): never marked."""
    cut_start = 1 if snippet_text.startswith(ELLIPSIS) else None
    cut_end = len(snippet_text) - 1 if snippet_text.endswith(ELLIPSIS) else None
    return [m.span() for m in _TOKEN.finditer(snippet_text)
            if m.group().casefold() in wanted and m.start() != cut_start and m.end() != cut_end]


def _page_arg(value: Any, field: str, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        raise InvalidArgument(f"{field} must be an integer from {lo}" + (f" to {hi}" if hi else " up"), field=field)
    return value


class ConversationSearch:
    """Search over a store's conversations."""

    def __init__(self, store: "Store"):
        self.store = store

    async def search(self, tenant: str, q: str, limit: int = 20, offset: int = 0) -> tuple[list[SearchHit], int | None]:
        """The hits ranked `offset` to `offset + limit` for `q`, and the next offset when more hits follow."""
        limit = _page_arg(limit, "limit", 1, MAX_LIMIT)
        offset = _page_arg(offset, "offset", 0)  # any size: beyond the end is an empty page
        if not isinstance(q, str):
            raise InvalidArgument("q must be a string", field="q")
        wanted = list(dict.fromkeys(tokens(q)))
        if not wanted:
            return [], None
        matches = await self.store.conversations.search(tenant, wanted)
        if matches is None or not matches.rows:
            return [], None
        best: dict[str, tuple[float, int]] = {}  # conversation -> (score, -position) of its best message
        for conversation_id, position, score in bm25(matches):
            if (score, -position) > best.get(conversation_id, (-1.0, 0)):
                best[conversation_id] = (score, -position)
        end = offset + limit
        if offset >= len(best):
            return [], None
        # Only the conversations scoring at least the end-th best can be on this page or before it.
        floor = heapq.nlargest(end, (s for s, _ in best.values()))[-1]
        rows = await self.store.conversations.many(tenant, [c for c, (s, _) in best.items() if s >= floor])
        rows.sort(key=lambda c: (best[c.id][0], c.updated_at, c.id), reverse=True)
        page = [(c, (c.id, -best[c.id][1])) for c in rows[offset:end]]
        contents = await self.store.conversations.contents(tenant, [at for _, at in page])
        hits = [SearchHit(c.id, c.title, snippet(contents.get(at, ""), set(wanted)), c.message_count, c.created_at,
                          c.updated_at) for c, at in page]
        return hits, (end if len(best) > end else None)
