"""Conversation analytics (AgentState §5.10; D25, D27).

Rules:
- the figures are of the tenant's conversations created in [start, end] ms, both ends inclusive (default
  end: now; default start: end - 30 days), carrying ALL the given tags; a tag no conversation can carry
  (outside the tag pattern) matches nothing;
- they are computed fresh on every call (D25), added up in SQL (store.analytics), never by reading the
  conversations one by one;
- messages = Σ message_count, tokens = Σ token_count (the conversation counters); averages are exact
  quotients rounded half-up to one decimal, 0 without conversations;
- time series buckets are of created_at in UTC: day `YYYY-MM-DD`, week `YYYY-Www` (Python's %W: weeks
  start on Monday, the days before a year's first Monday are its week 00), month `YYYY-MM`; only buckets
  holding a conversation are given (their value may be 0), ascending. Days come from SQL; weeks and
  months are added up from them here;
- per tag: conversation, message and token figures of the conversations carrying it, by conversation
  count descending, then tag ascending (D27).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import msgspec

from ..store.base import Store
from .conversations import MAX_INT, _limit, ms, validate_tag
from .errors import InvalidArgument

DEFAULT_SPAN_MS = 30 * 86_400_000
METRICS = ("conversations", "messages", "tokens")
GRANULARITIES = ("day", "week", "month")
_BUCKET = {"day": "%Y-%m-%d", "week": "%Y-W%W", "month": "%Y-%m"}
_EPOCH = datetime.date(1970, 1, 1)
MAX_TAG_ROWS = 200


class Summary(msgspec.Struct, frozen=True):
    total_conversations: int
    total_messages: int
    total_tokens: int
    avg_messages_per_conversation: Decimal
    avg_tokens_per_conversation: Decimal
    start: int
    end: int


class Point(msgspec.Struct, frozen=True):
    bucket: str
    value: int


class Series(msgspec.Struct, frozen=True):
    metric: str
    granularity: str
    start: int
    end: int
    data: list[Point]


class TagFigures(msgspec.Struct, frozen=True):
    tag: str
    conversation_count: int
    message_count: int
    token_count: int


class TagTable(msgspec.Struct, frozen=True):
    start: int
    end: int
    data: list[TagFigures]


def average(total: int, count: int) -> Decimal:
    """total / count rounded half-up to one decimal, in exact integer arithmetic."""
    if count == 0:
        return Decimal(0)
    return Decimal((20 * total + count) // (2 * count)).scaleb(-1)


def bucket(day: int, granularity: str) -> str:
    """The bucket of a UTC day (days since 1970-01-01)."""
    return (_EPOCH + datetime.timedelta(days=day)).strftime(_BUCKET[granularity])


def _time(value: Any, field: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT):
        raise InvalidArgument(f"{field} must be an integer of milliseconds from 0 to {MAX_INT}", field=field)
    return value


def _carriable(tag: Any) -> bool:
    try:
        validate_tag(tag)
    except InvalidArgument:
        return False
    return True


def _tags(tags: Any) -> list[str] | None:
    """The distinct tags to require; None when one of them cannot be carried (nothing matches)."""
    if not isinstance(tags, (list, tuple)):
        raise InvalidArgument("tags must be an array", field="tags")
    wanted = list(dict.fromkeys(tags))
    return wanted if all(_carriable(t) for t in wanted) else None


class Analytics:
    """Analytics over a store."""

    def __init__(self, store: Store):
        self.store = store

    def period(self, start: int | None = None, end: int | None = None) -> tuple[int, int]:
        """The resolved [start, end] ms: end defaults to now, start to 30 days before end."""
        end = _time(end, "end")
        end = ms(self.store.clock.now()) if end is None else end
        start = _time(start, "start")
        return (end - DEFAULT_SPAN_MS if start is None else start), end

    async def summary(self, tenant: str, *, start: int | None = None, end: int | None = None,
                      tags: list[str] = ()) -> Summary:
        start, end = self.period(start, end)
        wanted = _tags(tags)
        count, messages, tokens = (0, 0, 0) if wanted is None else await self.store.analytics.totals(
            tenant, start, end, wanted)
        return Summary(count, messages, tokens, average(messages, count), average(tokens, count), start, end)

    async def timeseries(self, tenant: str, *, metric: str = "conversations", granularity: str = "day",
                         start: int | None = None, end: int | None = None, tags: list[str] = ()) -> Series:
        if metric not in METRICS:
            raise InvalidArgument(f"metric must be one of {', '.join(METRICS)}", field="metric")
        if granularity not in GRANULARITIES:
            raise InvalidArgument(f"granularity must be one of {', '.join(GRANULARITIES)}", field="granularity")
        start, end = self.period(start, end)
        wanted = _tags(tags)
        days = [] if wanted is None else await self.store.analytics.days(tenant, start, end, wanted)
        column = METRICS.index(metric) + 1
        values: dict[str, int] = {}  # days come ascending, and so do their buckets
        for row in days:
            key = bucket(row[0], granularity)
            values[key] = values.get(key, 0) + row[column]
        return Series(metric, granularity, start, end, [Point(k, v) for k, v in values.items()])

    async def tags(self, tenant: str, *, start: int | None = None, end: int | None = None,
                   limit: int = 50) -> TagTable:
        limit = _limit(limit, MAX_TAG_ROWS)
        start, end = self.period(start, end)
        rows = await self.store.analytics.tags(tenant, start, end, limit)
        return TagTable(start, end, [TagFigures(*r) for r in rows])
