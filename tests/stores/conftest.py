"""One store suite, both stores: every test here that takes `store` runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL (default: the local server's `postgres` database); each
test session creates its own database and each test starts from empty tables. Where no PostgreSQL is
reachable the PostgreSQL runs skip with the reason printed, unless TEST_REQUIRE_POSTGRES is set (CI
sets it when one is reachable), where they fail.
"""

from __future__ import annotations

import pytest

from stigmer.clock import ManualClock
from stigmer.store.sqlite import SQLiteStore
from pg_support import fresh_tables, postgres_url


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request):
    return request.param


@pytest.fixture
async def open_store(store_kind, tmp_path, clock, request):
    """A factory of opened stores of this test's kind: every call gives another handle on the same data
    (another replica, for PostgreSQL; the same file reopened, for SQLite). Open handles close at teardown."""
    opened = []
    url = None
    if store_kind == "postgres":
        url = postgres_url(request)
        fresh_tables(url)

    async def make(**options):
        options.setdefault("clock", clock)
        if store_kind == "sqlite":
            s = SQLiteStore(str(tmp_path / "data"), **options)
        else:
            from stigmer.store.postgres import PostgresStore
            s = PostgresStore(url, **options)
        await s.open()
        opened.append(s)
        return s

    yield make
    for s in opened:
        await s.close()


@pytest.fixture
async def store(open_store):
    return await open_store()


# `hub` and `kv` come from tests/conftest.py: built over this directory's `store`, they run on both stores.
