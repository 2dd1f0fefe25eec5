"""What both stores' memory index shares (engine/memory/search.py, docs/memory.md "Search").

Index terms are the §6.5 tokens written as FTS-safe words (conversation_rows.index_term: [a-z0-9_] only, a
prefix, hex for non-ASCII, a hash for over-long tokens), so no user text ever reaches a tokenizer or a query
parser. Reads select active memories only (supersession and deletion drop index rows and vectors anyway).
"""

from __future__ import annotations

import numpy as np

from ..engine.memory.search import TermMatches, tokens
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


def seq_column(cursor) -> np.ndarray:
    """The first column of a cursor's rows (seqs) as int64."""
    return np.fromiter((seq for (seq,) in cursor), dtype=np.int64)


def term_matches(n: int, length: int, meta: list[tuple[int, int, int, bytes]], terms: list[str],
                 holders: list[np.ndarray]) -> TermMatches:
    """TermMatches of index rows (seq, created_at, length, repeats as ASCII bytes) in ascending seq order,
    given each term's holders (its postings in the scope, ascending): a term's frequency is 0 unless its
    postings hold the row, then its count in `repeats`, else 1."""
    seqs, created, lengths, repeats_bytes = (list(c) for c in zip(*meta)) if meta else ([], [], [], [])
    seqs = np.asarray(seqs, dtype=np.int64)
    tfs = np.zeros((len(terms), len(seqs)), dtype=np.int64)
    for i, h in enumerate(holders):
        at = np.searchsorted(seqs, h)  # a holder outside the rows (an all-terms match) is not among them
        inside = at < len(seqs)
        at = at[inside][seqs[at[inside]] == h[inside]]
        tfs[i, at] = 1
    for j, i, count in repeated(repeats_bytes, terms):
        if tfs[i, j]:
            tfs[i, j] = count
    return TermMatches(n, length, [len(h) for h in holders], seqs, np.asarray(created, dtype=np.int64),
                       np.asarray(lengths, dtype=np.int64), tfs)


def repeated(repeats_bytes: list[bytes], terms: list[str]) -> list[tuple[int, int, int]]:
    """(row, term index, count) of each wanted term some row's `repeats` ("term count term count") names: a
    search of each term in all the rows joined (C speed; a term is rarely repeated). Terms are [a-z0-9_] and
    counts digits, so ` term ` is exactly a term slot, and the count runs to the next space."""
    joined = b" " + b" \n ".join(repeats_bytes) + b" "
    found = []
    for i, t in enumerate(terms):
        needle = b" " + t.encode() + b" "
        at = joined.find(needle)
        while at >= 0:
            start = at + len(needle)
            end = joined.index(b" ", start)
            found.append((joined.count(b"\n", 0, at), i, int(joined[start:end])))
            at = joined.find(needle, end)
    return found


def found_matches(n: int, length: int, df: list[int], found: list[tuple[int, int, int, str]],
                  terms: list[str]) -> TermMatches:
    """TermMatches of rows (seq, created_at, length, the memory's index terms): counts by tfs_of."""
    return TermMatches(n, length, df, np.asarray([r[0] for r in found], dtype=np.int64),
                       np.asarray([r[1] for r in found], dtype=np.int64),
                       np.asarray([r[2] for r in found], dtype=np.int64),
                       np.asarray([tfs_of(r[3], terms) for r in found], dtype=np.int64).reshape(len(found), len(terms)).T)


def tfs_of(term_text: str, wanted: list[str]) -> tuple[int, ...]:
    """Each wanted term's count in a memory's terms (list.count: a few terms over a short text, in C)."""
    found = term_text.split()
    return tuple(found.count(t) for t in wanted)


def by_seq(found: list) -> dict:
    """Memory rows (seq first) as seq → record."""
    return {r[0]: memory_of(r[1:]) for r in found}
