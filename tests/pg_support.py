"""PostgreSQL for tests: one database per test session, created on the local server and dropped after."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

import pytest

BASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# `TEST_STORE=postgres` runs the API and end-to-end suites on PostgreSQL (`make test-postgres`).
ON_POSTGRES = os.environ.get("TEST_STORE", "sqlite") == "postgres"
_state: dict[str, object] = {}
_databases: dict[str, str] = {}
_DROP_LATER: list[str] = []  # every database this process made


def _unavailable(reason: str):
    if os.environ.get("TEST_REQUIRE_POSTGRES"):
        pytest.fail(f"PostgreSQL is required here (TEST_REQUIRE_POSTGRES) but {reason}")
    pytest.skip(f"PostgreSQL not reachable at {BASE_URL}: {reason}")


def new_database(name: str) -> str:
    """Create (or recreate) database `name` next to BASE_URL's and return its URL."""
    import psycopg

    with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    _DROP_LATER.append(name)  # dropped at exit unless the test drops it first
    return BASE_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:
        pass


def _drop_in_background() -> None:
    """Drop this session's databases from a detached process: each drop costs PostgreSQL a moment, and a
    run that made a few hundred should not wait for them at exit."""
    if not _DROP_LATER:
        return
    script = ("import psycopg, sys\n"
              "with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=3) as c:\n"
              "    for n in sys.argv[2:]:\n"
              "        c.execute(f'DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)')\n")
    subprocess.Popen([sys.executable, "-c", script, BASE_URL, *_DROP_LATER], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


atexit.register(_drop_in_background)


def postgres_url(request=None) -> str:
    """The session's test database (created on first use), or skip/fail when PostgreSQL is not there."""
    if "url" in _state:
        return _state["url"]  # type: ignore[return-value]
    if "error" in _state:
        _unavailable(str(_state["error"]))
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        _state["error"] = f"psycopg is not installed ({exc})"
        _unavailable(str(_state["error"]))
    name = f"stigmer_test_{os.getpid()}"
    try:
        url = new_database(name)
    except Exception as exc:
        _state["error"] = exc
        _unavailable(str(exc))
    _state["url"] = url
    return url


def database_for(place: str) -> str:
    """A database standing for a data directory: the same `place` gives the same database within a
    session (so a restarted server finds its data), a new one starts empty."""
    if place not in _databases:
        postgres_url()  # skip or fail here when there is no PostgreSQL
        name = f"stigmer_t{os.getpid()}_{len(_databases)}"
        _databases[place] = new_database(name)
    return _databases[place]


def fresh_tables(url: str) -> None:
    """Empty every table but the schema version, so each test starts from nothing."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'")]
        tables.sort(key=lambda t: t == "tenants")  # last: api_keys refers to it (the key is not deferrable)
        with conn.transaction():  # DELETE beats TRUNCATE on tables this small (no file rewrite)
            conn.execute("SET CONSTRAINTS ALL DEFERRED")
            for t in tables:
                conn.execute(f'DELETE FROM "{t}"')
