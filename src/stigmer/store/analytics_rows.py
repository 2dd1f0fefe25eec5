"""Analytics queries as both stores run them (AgentState §5.10): a project's conversations created in
[start, end] (both ends inclusive) and carrying every one of some tags, added up in SQL by GROUP BY, never
read row by row.

A sum is read as two: of each value's high 32 bits and of its low 32 bits. Neither can overflow a 64-bit
integer below 2^31 rows, where one SUM of 64-bit counters could (SQLite raises on overflow); `total`
adds them back exactly.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

DAY_MS = 86_400_000
_LOW = 0xFFFFFFFF


def sums(column: str) -> str:
    return f"SUM({column} >> 32), SUM({column} & {_LOW})"


def total(high, low) -> int:
    """A sum read as `sums` gives it (NULL over no rows is 0; PostgreSQL's SUM is a numeric)."""
    return (int(high or 0) << 32) + int(low or 0)


def where(mark: str, tag_set: str, tenant: str, start: int, end: int, tags: list[str], tag_param) -> tuple[str, list]:
    """The filter on `conversations c`; `tag_set` is the store's `tag IN <set>` for one parameter holding
    the distinct `tags` (as `tag_param` gives it). The conversations in the period are read by creation
    (conversations_by_creation) and each probes its tags: one parameter, however many tags."""
    sql = f" WHERE c.tenant = {mark} AND c.created_at >= {mark} AND c.created_at <= {mark}"
    params: list = [tenant, start, end]
    if tags:
        sql += (" AND (SELECT COUNT(*) FROM conversation_tags g WHERE g.tenant = c.tenant"
                f" AND g.conversation_id = c.id AND g.{tag_set}) = {mark}")
        params += [tag_param(tags), len(tags)]
    return sql, params


def totals_sql(where_sql: str) -> str:
    return f"SELECT COUNT(*), {sums('c.message_count')}, {sums('c.token_count')} FROM conversations c{where_sql}"


def days_sql(where_sql: str) -> str:
    return (f"SELECT c.created_at / {DAY_MS} AS day, COUNT(*), {sums('c.message_count')}, {sums('c.token_count')}"
            f" FROM conversations c{where_sql} GROUP BY day ORDER BY day")


def tags_sql(where_sql: str, mark: str) -> str:
    return (f"SELECT t.tag, COUNT(*), {sums('c.message_count')}, {sums('c.token_count')} FROM conversations c"
            " JOIN conversation_tags t ON t.tenant = c.tenant AND t.conversation_id = c.id"
            f"{where_sql} GROUP BY t.tag ORDER BY COUNT(*) DESC, t.tag LIMIT {mark}")


def figures(r: tuple | list) -> tuple:
    """(head, count, messages, tokens) of a row (head, count, message sums, token sums)."""
    *head, count, mh, ml, th, tl = r
    return (*head, int(count), total(mh, ml), total(th, tl))


class Analytics:
    """`store.analytics`, in a store's dialect: its parameter `mark`, its `tag IN <set>` for one parameter
    (`tag_set`) and how that parameter holds a list (`tag_param`), and its read of one statement."""

    def __init__(self, mark: str, tag_set: str, tag_param: Callable[[list[str]], Any],
                 fetch: Callable[[str, tuple], Awaitable[list[tuple]]]):
        self._mark, self._tag_set, self._tag_param, self._fetch = mark, tag_set, tag_param, fetch

    async def _rows(self, make_sql, tenant: str, start: int, end: int, tags: list[str], *tail) -> list[tuple]:
        where_sql, params = where(self._mark, self._tag_set, tenant, start, end, tags, self._tag_param)
        return [figures(r) for r in await self._fetch(make_sql(where_sql), (*params, *tail))]

    async def totals(self, tenant: str, start: int, end: int, tags: list[str]) -> tuple[int, int, int]:
        return (await self._rows(totals_sql, tenant, start, end, tags))[0]

    async def days(self, tenant: str, start: int, end: int, tags: list[str]) -> list[tuple[int, int, int, int]]:
        return await self._rows(days_sql, tenant, start, end, tags)

    async def tags(self, tenant: str, start: int, end: int, limit: int) -> list[tuple[str, int, int, int]]:
        return await self._rows(lambda w: tags_sql(w, self._mark), tenant, start, end, [], limit)
