"""What both stores' memory index shares (engine/memory/search.py, docs/memory.md "Search").

Index terms are the §6.5 tokens written as FTS-safe words (conversation_rows.index_term: [a-z0-9_] only, a
prefix, hex for non-ASCII, a hash for over-long tokens), so no user text ever reaches a tokenizer or a query
parser. Reads select active memories only (supersession and deletion drop index rows and vectors anyway).
"""

from __future__ import annotations

from ..engine.memory.search import tokens
from .conversation_rows import index_term
from .memory_rows import MEMORY_COLUMNS, NEWEST_FIRST, memory_of

SELECT_MEMORIES = f"SELECT {', '.join(MEMORY_COLUMNS)} FROM memories"
# Episodes, the newest first by (created_at, seq) (§6.12 episode windows).
EPISODE_WINDOW = " ORDER BY created_at DESC, seq DESC LIMIT {m}"


def term_list(prefix: int, content: str) -> list[str]:
    """A memory's index terms in order (repeats kept)."""
    found = tokens(content)
    term = {t: index_term(prefix, t) for t in set(found)}
    return [term[t] for t in found]


def scope(tenant: str, tenant_id: str | None, subject_id: str, kinds: list[str] | None, mark: str,
          alias: str = "") -> tuple[str, list]:
    """Conditions (no WHERE) of a request's scope over index-like rows (§3.2: unscoped sees every Statewave
    tenant of the Stigmer tenant)."""
    a = alias
    sql, params = f"{a}tenant = {mark} AND {a}subject_id = {mark}", [tenant, subject_id]
    if tenant_id is not None:
        sql += f" AND {a}tenant_id = {mark}"
        params.append(tenant_id)
    if kinds is not None:
        sql += f" AND {a}kind IN ({', '.join([mark] * len(kinds))})"
        params += kinds
    return sql, params


def newest_sql(tenant: str, tenant_id: str | None, subject_id: str, kinds: list[str] | None, limit: int,
               mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, kinds, mark)
    return f"{SELECT_MEMORIES} WHERE {where} AND status = 'active'{NEWEST_FIRST} LIMIT {mark}", [*params, limit]


def repeats(found: list[str]) -> str:
    """The terms a memory holds more than once, with their counts: "term count term count"."""
    counted: dict[str, int] = {}
    for t in found:
        counted[t] = counted.get(t, 0) + 1
    return " ".join(f"{t} {c}" for t, c in counted.items() if c > 1)


def with_tfs(meta: list[tuple[int, int, int, str]], terms: list[str],
             holders: list[set[int]]) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """(seq, created_at, length, each term's frequency) of index rows (seq, created_at, length, repeats): 0
    unless the term's postings hold the row, then its count in `repeats`, else 1. Filled from the postings
    (a few hundred set items) rather than testing every row against every term: a row's held terms are a bit
    mask, and rows with the same mask and no wanted term in `repeats` share one tuple."""
    at = {t: i for i, t in enumerate(terms)}
    held: dict[int, int] = {}
    for i, h in enumerate(holders):
        bit = 1 << i
        for seq in h:
            held[seq] = held.get(seq, 0) | bit
    shapes: dict[int, tuple[int, ...]] = {}
    out = []
    for seq, created_at, length, repeats_text in meta:
        mask = held.get(seq, 0)
        f = shapes.get(mask)
        if f is None:
            f = shapes[mask] = tuple((mask >> i) & 1 for i in range(len(terms)))
        if repeats_text:
            words = repeats_text.split()  # "term count term count"
            more = None
            for j in range(0, len(words), 2):
                i = at.get(words[j])
                if i is not None and f[i]:
                    if more is None:
                        more = list(f)
                    more[i] = int(words[j + 1])
            if more is not None:
                f = tuple(more)
        out.append((seq, created_at, length, f))
    return out


def tfs_of(term_text: str, wanted: list[str]) -> tuple[int, ...]:
    """Each wanted term's count in a memory's terms (list.count: a few terms over a short text, in C)."""
    found = term_text.split()
    return tuple(found.count(t) for t in wanted)


def by_seq(found: list) -> dict:
    """Memory rows (seq first) as seq → record."""
    return {r[0]: memory_of(r[1:]) for r in found}
