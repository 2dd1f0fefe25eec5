"""Which store a configuration asks for: PostgreSQL when a database URL is set, else embedded SQLite."""

from __future__ import annotations

from ..clock import Clock
from .base import Store


def open_store(settings, clock: Clock) -> Store:
    """The (unopened) store for these settings."""
    url = settings.database_url
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL")
        from .postgres import PostgresStore

        return PostgresStore(url, clock=clock, pool_size=settings.pg_pool_size, writers=settings.pg_writers,
                             tick_seconds=settings.feed_tick_seconds)
    from .sqlite import SQLiteStore

    return SQLiteStore(settings.data_dir, clock=clock, reader_threads=settings.reader_threads)
