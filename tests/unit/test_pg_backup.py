"""What a PostgreSQL URL becomes for pg_dump and pg_restore: the password only ever in PGPASSWORD."""

import re
from pathlib import Path

import pytest

from stigmer.store.backups import BackupError
from stigmer.store import pg_backup
from stigmer.store.pg_backup import Target, _copy_rows, _unescape


@pytest.mark.parametrize(("url", "dsn", "password"), [
    ("postgresql://app:s%40cret@db:5432/stigmer", "postgresql://app@db:5432/stigmer", "s@cret"),
    ("postgres://app@db/stigmer?sslmode=require&password=pw", "postgres://app@db/stigmer?sslmode=require", "pw"),
    ("postgresql://app:pw@[::1]:5433,other:5432/s", "postgresql://app@[::1]:5433,other:5432/s", "pw"),
    ("postgresql://db/stigmer", "postgresql://db/stigmer", ""),
])
def test_the_password_leaves_the_url(url, dsn, password):
    t = Target(url)
    assert (t.dsn, t.password) == (dsn, password)
    assert "pw" not in t.shown and "cret" not in t.shown
    if password:
        assert t.env()["PGPASSWORD"] == password and t.scrub(f"failed for {password}") == "failed for ***"


def test_not_a_postgres_url():
    with pytest.raises(BackupError) as e:
        Target("mysql://x/y")
    assert e.value.code == "invalid_argument"


def test_copy_blocks_of_a_restore_script():
    script = ("SET x = 1;\nCOPY public.tenant_revisions (tenant, rev, compacted_rev) FROM stdin;\n"
              "default\t41\t0\nte\\tam\t7\t2\n\\.\n\nCOPY public.schema_migrations (version, applied_at) FROM stdin;\n"
              "1\t1.5\n3\t2.5\n\\.\n")
    rows = _copy_rows(script)
    assert rows["tenant_revisions"] == [["default", "41", "0"], ["te\\tam", "7", "2"]]
    assert [r[0] for r in rows["schema_migrations"]] == ["1", "3"]
    assert _unescape("te\\tam\\\\x") == "te\tam\\x"


def test_every_table_the_migrations_create_is_known_to_backup_and_restore():
    """A forced restore drops the tables it knows: one a migration adds must be among them."""
    source = "".join(p.read_text() for p in Path(pg_backup.__file__).parent.joinpath("postgres").glob("*.py"))
    assert set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", source)) == set(pg_backup.TABLES)
