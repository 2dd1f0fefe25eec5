"""What only the embedded store has: its schema file and its durability settings."""

import sqlite3

from stigmer.store.sqlite.migrations import MIGRATIONS


async def test_schema_is_versioned_and_pragmas_are_durable(store):
    conn = sqlite3.connect(store.path)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [v for v, _ in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._write_conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
