"""Which store a configuration asks for: PostgreSQL when a database URL is set, else embedded SQLite."""

from __future__ import annotations

from ..clock import Clock
from .base import Store
from .dsn import mask_url


def describe_target(settings) -> str:
    """Where the data lives, for the start-up line (a URL's password is never shown)."""
    import os

    return mask_url(settings.database_url) if settings.database_url else os.path.abspath(settings.data_dir)


def keys_exist(settings) -> bool:
    """Whether the configured store holds any API key, checked before serving (no server running)."""
    if not settings.database_url:
        from .sqlite.keys import keys_exist as sqlite_keys_exist

        return sqlite_keys_exist(settings.data_dir)
    import asyncio

    from ..clock import SystemClock

    async def check() -> bool:
        store = open_store(settings, SystemClock())
        await store.open()
        try:
            return await store.keys.any()
        finally:
            await store.close()

    return asyncio.run(check())


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
