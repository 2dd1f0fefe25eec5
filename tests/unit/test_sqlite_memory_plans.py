"""The SQLite memory index reads stay index lookups (bench/results/memory.md "Latency, second round"): the
planner once walked a tenant's whole active-memory index to return a handful of rows by seq."""

import json
import sqlite3

import numpy as np

from stigmer.engine.memory.search import cosine_ranked
from stigmer.store.sqlite import SQLiteStore
from stigmer.store.sqlite import memory_index
from stigmer.store.sqlite.store import DB_FILE


def plan(path: str, sql: str, params: tuple) -> str:
    conn = sqlite3.connect(path)
    try:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    finally:
        conn.close()


async def test_memories_by_seq_are_primary_key_lookups(tmp_path):
    store = SQLiteStore(str(tmp_path))
    await store.open()
    await store.close()
    found = plan(str(tmp_path / DB_FILE), memory_index._BY_SEQ, (json.dumps([1, 2, 3]), "t"))
    assert "USING INTEGER PRIMARY KEY" in found and "memories_active" not in found, found


async def test_the_newest_memories_of_one_kind_are_read_in_index_order(tmp_path):
    store = SQLiteStore(str(tmp_path))
    await store.open()
    await store.close()
    found = plan(str(tmp_path / DB_FILE), *memory_index.newest_sql("t", None, "s", ["episode_summary"], 50))
    # the inner pick walks memory_index_rows_newest and stops; only the 50 wide rows it chose are sorted
    assert "COVERING INDEX memory_index_rows_newest" in found and found.count("TEMP B-TREE") == 1, found


def test_cosine_ranking_orders_by_distance_then_newest_then_seq():
    matrix = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    query = np.array([1, 0], dtype=np.float32)
    seqs, created = [5, 4, 3, 2, 1], [10, 10, 20, 10, 30]
    ranked = cosine_ranked(query, seqs, created, matrix)
    assert [s for s, _ in ranked] == [3, 5, 1, 2, 4]  # distance 0: newer first; distance 1: newer, then seq
    assert [d for _, d in ranked] == [0.0, 0.0, 1.0, 1.0, 1.0]
