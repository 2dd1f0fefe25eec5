"""`stigmer backup` and `stigmer restore` as an operator runs them: real servers, real files, real processes.

The main test writes through HTTP from several threads while `stigmer backup` runs, restores into a new
place, serves it, and checks the restored state against the log of acknowledged writes: it must be the
state at exactly one revision R per tenant, holding every write acknowledged before the backup began and
none begun after it ended; revisions carry on from R; watches resume from a revision before R.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from httpx_sse import connect_sse

from local_http import free_port
from pg_support import ON_POSTGRES, drop_database, new_database, postgres_url
from stigmer.store.sqlite.migrations import MIGRATIONS

SCHEMA = max(v for v, _ in MIGRATIONS)  # both stores migrate to the same version

KEYS = 13  # keys per tenant, rewritten over and over so versions climb
NS = "bk"
# Both stores' halves run in `make test` (the PostgreSQL half where PostgreSQL answers); on the PostgreSQL
# run they would only repeat themselves.
pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="runs in `make test`, both stores")


def stigmer(*args: str, ok: bool = True, timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STIGMER_", "PG"))}
    p = subprocess.run([sys.executable, "-m", "stigmer.cli", *args], capture_output=True, text=True,
                       env={**env, "NO_COLOR": "1", "COLUMNS": "200", **extra_env}, timeout=timeout)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def one_line_error(p: subprocess.CompletedProcess, *words: str) -> str:
    """A refusal: exit 1 and one line on stderr holding `words`, no traceback."""
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ---- a log of acknowledged writes, and the state it implies at a revision ------------------------------

class Ack(NamedTuple):
    tenant: str
    key: str
    value: dict
    version: int
    rev: int
    started: float  # time.monotonic() when the request was sent
    acked: float  # ... and when its answer arrived


class Writers:
    """Threads that PUT `{"w": thread, "i": n}` at KEYS keys of each tenant and log every acknowledgement."""

    def __init__(self, url: str, tokens: dict[str, str], per_tenant: int = 2, limit: int = 20_000):
        self.url, self.tokens, self.limit = url, tokens, limit
        self.acks: list[Ack] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t, f"{t}-{i}"), daemon=True)
                         for t in tokens for i in range(per_tenant)]

    def _run(self, tenant: str, name: str) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[tenant]}"}
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as c:
            for n in range(self.limit):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                key, value = f"k{(n * 7 + len(self.acks)) % KEYS}", {"w": name, "i": n}
                started = time.monotonic()
                try:
                    r = c.put(f"/v1/kv/{NS}/{key}", json=value)
                except httpx.HTTPError as exc:
                    r, problem = None, repr(exc)
                with self._cond:
                    if r is not None and r.status_code in (200, 201):
                        e = r.json()
                        self.acks.append(Ack(tenant, key, value, e["version"], e["mod_revision"], started,
                                             time.monotonic()))
                    else:
                        self.errors.append(problem if r is None else f"{r.status_code} {r.text[:200]}")
                        self._stop.set()
                    self._cond.notify_all()

    def start(self) -> "Writers":
        for t in self._threads:
            t.start()
        return self

    def wait_for(self, count: int) -> None:
        """Until `count` more writes are acknowledged (each tenant some), or a write failed."""
        with self._cond:
            target = len(self.acks) + count
            ok = self._cond.wait_for(lambda: self.errors or self._stop.is_set() or (
                len(self.acks) >= target and {a.tenant for a in self.acks[-count:]} == set(self.tokens)), 30)
        assert ok and not self.errors, self.errors or "the writers stalled"

    def stop(self) -> list[Ack]:
        self._stop.set()
        for t in self._threads:
            t.join(15)
        assert not self.errors, self.errors
        return sorted(self.acks, key=lambda a: (a.tenant, a.rev))


def state_at(acks: list[Ack], tenant: str, rev: int) -> dict[str, Ack]:
    """Each key's newest acknowledged write at revision `rev` (the writers are the tenant's only writers)."""
    out: dict[str, Ack] = {}
    for a in acks:
        if a.tenant == tenant and a.rev <= rev:
            out[a.key] = a
    return out


# ---- the shared scenario: write during a backup, restore, serve, check ------------------------------------

def make_tokens(offline: tuple[str, str]) -> dict[str, str]:
    """An API key for each of two tenants, created offline before any server runs."""
    return {t: json.loads(stigmer("keys", "create", *offline, "--tenant", t, "--scope", "read,write,watch",
                                  "--json").stdout)["secret"] for t in ("default", "team")}


def backup_during_writes(server, tokens: dict[str, str], source: tuple[str, str],
                         out: Path) -> tuple[list[Ack], float, float, str]:
    """Write from several threads; run `stigmer backup` while they write; keep writing after it ended.
    Returns (the acknowledged writes, when the backup began, when it ended, its stdout)."""
    writers = Writers(server.url, tokens).start()
    try:
        writers.wait_for(200)
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "stigmer.cli", "backup", *source, str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={k: v for k, v in os.environ.items() if not k.startswith(("STIGMER_", "PG"))})
        stdout, stderr = proc.communicate(timeout=60)
        ended = time.monotonic()
        assert proc.returncode == 0, stderr
        writers.wait_for(100)  # writes begun after the backup ended
    finally:
        acks = writers.stop()
    during = [a for a in acks if began < a.acked < ended]
    assert during, "no write was acknowledged while the backup ran: did the backup block the writer?"
    return acks, began, ended, stdout


def check_restored(url: str, tokens: dict[str, str], acks: list[Ack], began: float, ended: float,
                   summary: str) -> None:
    """The restored server holds one consistent state per tenant (see the module docstring)."""
    for tenant, token in tokens.items():
        mine = [a for a in acks if a.tenant == tenant]
        assert [a.rev for a in mine] == list(range(1, len(mine) + 1)), "the source's revisions had gaps"
        h = {"Authorization": f"Bearer {token}"}  # the keys were restored with the data
        with httpx.Client(base_url=url, headers=h, timeout=10) as c:
            r = c.get("/v1/revision")
            assert r.status_code == 200, r.text
            rev = r.json()["revision"]
            assert f"{tenant} at revision {rev}" in summary, summary
            before = [a.rev for a in mine if a.acked < began]
            after = [a.rev for a in mine if a.started > ended]
            assert max(before) <= rev < min(after), (tenant, max(before), rev, min(after))
            expected = state_at(acks, tenant, rev)
            for i in range(KEYS):
                got = c.get(f"/v1/kv/{NS}/k{i}")
                want = expected.get(f"k{i}")
                if want is None:
                    assert got.status_code == 404, got.text
                    continue
                assert got.status_code == 200, got.text
                e = got.json()
                assert (e["value"], e["version"], e["mod_revision"]) == (want.value, want.version, want.rev), e
            # revisions carry on from the backup's
            key = "k0"
            r = c.put(f"/v1/kv/{NS}/{key}", json={"after": "restore"})
            assert r.status_code in (200, 201), r.text
            assert r.json()["mod_revision"] == rev + 1
            assert r.json()["version"] == (expected[key].version + 1 if key in expected else 1)
            # a watcher resumes from a revision before the backup's: the restored history, then the new write
            start = max(0, rev - 5)
            seen = []
            with connect_sse(c, "GET", "/v1/watch", params={"namespace": NS},
                             headers={"Last-Event-ID": str(start)}) as es:
                for ev in es.iter_sse():
                    if ev.event != "change":
                        continue
                    cs = json.loads(ev.data)
                    seen.append((cs["revision"], [(ch["key"], ch["value"], ch["version"]) for ch in cs["changes"]]))
                    if cs["revision"] == rev + 1:
                        break
            want_seen = [(a.rev, [(a.key, a.value, a.version)]) for a in mine if start < a.rev <= rev]
            assert seen[:-1] == want_seen and seen[-1][0] == rev + 1, seen
            # a watcher that saw revisions newer than the backup is told so, not left waiting
            newest = mine[-1].rev
            if newest > rev + 1:
                r = c.get("/v1/watch", params={"namespace": NS, "index": newest, "wait": 1})
                assert r.status_code == 400 and r.json()["error"]["code"] == "future_revision", r.text


# ---- SQLite ---------------------------------------------------------------------------------------------

@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_sqlite_backup_while_writing_restores_one_consistent_state(tmp_path, make_server):
    src, dst = make_server(), make_server()
    data, fresh, out = src.data_dir, dst.data_dir, tmp_path / "backups" / "stigmer-backup.db"
    out.parent.mkdir()
    tokens = make_tokens(("--data-dir", str(data)))
    src.start()
    try:
        acks, began, ended, stdout = backup_during_writes(src, tokens, ("--data-dir", str(data)), out)
    finally:
        src.stop()
    assert stdout.startswith(f"wrote {out}: ") and f"schema {SCHEMA}, 2 tenants" in stdout, stdout
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name, out.name + ".sha256"]  # no temporary file
    check = subprocess.run(["sha256sum", "-c", out.name + ".sha256"], cwd=out.parent, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.strip() == f"{out.name}: OK", check
    restored = stigmer("restore", "--data-dir", str(fresh), str(out)).stdout
    assert restored.startswith(f"restored {out} into {fresh}: ") and "checksum matches" in restored, restored
    dst.start()
    check_restored(dst.url, tokens, acks, began, ended, stdout)


def _corrupt(good: Path, tmp: Path) -> dict[str, Path]:
    """Damaged copies of a good backup: truncated, one B-tree page overwritten, not a database at all."""
    import sqlite3

    data = good.read_bytes()
    conn = sqlite3.connect(f"file:{good}?mode=ro", uri=True)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
    conn.close()
    out = {"truncated": data[: len(data) // 2],
           "overwritten": data[: (root - 1) * page] + bytes(range(256)) * (page // 256) + data[root * page:],
           "not a database": b"this is not a backup\n" * 100}
    paths = {}
    for name, content in out.items():
        paths[name] = tmp / (name.replace(" ", "-") + ".db")
        paths[name].write_bytes(content)
    return paths


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_a_damaged_backup_is_refused_and_nothing_is_replaced(tmp_path, make_server):
    src, target = make_server(), make_server()
    src.start()
    for i in range(20):
        assert httpx.put(f"{src.url}/v1/kv/{NS}/k{i}", json={"v": "from the backup", "i": i}).status_code == 201
    src.stop()
    good = tmp_path / "good.db"
    stigmer("backup", "--data-dir", str(src.data_dir), str(good))
    target.start()
    for i in range(25):
        assert httpx.put(f"{target.url}/v1/kv/{NS}/k{i}", json={"v": "already here", "i": i}).status_code == 201
    target.kill()  # its last commits are in stigmer.db-wal only
    files = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in target.data_dir.iterdir()
             if f.name != "stigmer.lock"}
    assert set(files) == {"stigmer.db", "stigmer.db-wal", "stigmer.db-shm"}
    bad_files = _corrupt(good, tmp_path)
    # one changed byte inside a value: SQLite's integrity check cannot see it, the checksum file does
    tampered = tmp_path / "tampered.db"
    tampered.write_bytes(good.read_bytes().replace(b'"from the backup","i":3}', b'"from the backup","i":4}'))
    (tmp_path / "tampered.db.sha256").write_text((tmp_path / "good.db.sha256").read_text())
    bad_files["tampered"] = tampered
    for name, bad in bad_files.items():
        for where in (target.data_dir, tmp_path / f"empty-{bad.stem}"):
            p = stigmer("restore", "--data-dir", str(where), str(bad), "--force", ok=False)
            line = one_line_error(p, "error [invalid_backup]", str(bad))
            assert name != "tampered" or "does not match its checksum file" in line, line
            left = {f.name for f in where.iterdir()} - {"stigmer.lock"}
            assert left == (set(files) if where == target.data_dir else set()), (name, left)
    assert {f: hashlib.sha256((target.data_dir / f).read_bytes()).hexdigest() for f in files} == files
    target.start()
    assert httpx.get(f"{target.url}/v1/kv/{NS}/k3").json()["value"] == {"v": "already here", "i": 3}
    target.kill()  # again: a WAL full of the old database's pages
    # the good one replaces it only with --force, and the old WAL is not replayed onto it
    one_line_error(stigmer("restore", "--data-dir", str(target.data_dir), str(good), ok=False),
                   "error [exists]", "--force")
    assert "checksum matches good.db.sha256" in stigmer("restore", "--data-dir", str(target.data_dir), str(good),
                                                        "--force").stdout
    target.start()
    assert httpx.get(f"{target.url}/v1/kv/{NS}/k3").json()["value"] == {"v": "from the backup", "i": 3}
    assert httpx.get(f"{target.url}/v1/kv/{NS}/k22").status_code == 404
    assert httpx.get(f"{target.url}/v1/revision").json()["revision"] == 20


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_one_server_per_data_directory(tmp_path, make_server):
    server = make_server().start()
    try:
        assert httpx.put(f"{server.url}/v1/kv/{NS}/a", json=1).status_code == 201
        stigmer("backup", "--data-dir", str(server.data_dir), str(tmp_path / "b.db"))  # a reader: allowed
        in_use = ("is in use", str(server.data_dir), "another Stigmer server", f"pid {server.proc.pid}")
        # a second server on the same directory stops at once with one line
        second = subprocess.run([sys.executable, "-m", "stigmer.cli", "serve", "--port", str(free_port()),
                                 "--data-dir", str(server.data_dir)], capture_output=True, text=True, timeout=30,
                                env={k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")})
        assert second.returncode != 0
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert all(w in second.stderr for w in in_use), second.stderr
        # so do restore and the offline key commands
        one_line_error(stigmer("restore", "--data-dir", str(server.data_dir), str(tmp_path / "b.db"), "--force",
                               ok=False), "error [data_dir_in_use]", *in_use)
        one_line_error(stigmer("keys", "create", "--data-dir", str(server.data_dir), "--scope", "read", ok=False),
                       "error [data_dir_in_use]", *in_use, "--url")
        one_line_error(stigmer("keys", "list", "--data-dir", str(server.data_dir), ok=False),
                       "error [data_dir_in_use]")
        # the running server was not disturbed
        assert httpx.put(f"{server.url}/v1/kv/{NS}/a", json=2).json()["mod_revision"] == 2
    finally:
        server.stop()
    stigmer("keys", "list", "--data-dir", str(server.data_dir))  # free again once it stopped
    server.start()  # and a server may start on it again
    assert httpx.get(f"{server.url}/v1/kv/{NS}/a").json()["value"] == 2
    server.kill()  # a killed server's lock goes with it
    stigmer("keys", "list", "--data-dir", str(server.data_dir))


def test_backup_errors_are_one_line(tmp_path, make_server):
    one_line_error(stigmer("backup", "--data-dir", str(tmp_path / "none"), str(tmp_path / "b.db"), ok=False),
                   "error [not_found]", "no Stigmer database")
    one_line_error(stigmer("restore", "--data-dir", str(tmp_path / "d"), str(tmp_path / "missing.db"), ok=False),
                   "error [not_found]", "missing.db")
    server = make_server().start()
    server.stop()
    db = server.data_dir / "stigmer.db"
    one_line_error(stigmer("backup", "--data-dir", str(server.data_dir), str(db), ok=False),
                   "error [invalid_argument]")
    p = stigmer("backup", "--data-dir", str(server.data_dir), str(tmp_path / "no-such-dir" / "b.db"), ok=False)
    one_line_error(p, "error [invalid_argument]", "no-such-dir")
    p = stigmer("backup", "--data-dir", str(server.data_dir), "--database-url", "postgresql://x/y", "b.db", ok=False)
    assert p.returncode == 2 and "not both" in p.stderr


# ---- PostgreSQL -----------------------------------------------------------------------------------------

@pytest.fixture
def pg_databases(request):
    """Make databases of their own for this test (`make(name)` gives a URL); dropped at the end."""
    import importlib.util

    if importlib.util.find_spec("stigmer.store.postgres") is None:  # while it is written on its own branch
        pytest.skip("the PostgreSQL store (stigmer.store.postgres) is not on this branch yet")
    postgres_url(request)  # skips (or fails, where PostgreSQL is required) when there is none
    made = []

    def make(name: str) -> str:
        full = f"stigmer_bk_{os.getpid()}_{name}"
        made.append(full)
        return new_database(full)

    yield make
    for name in made:
        drop_database(name)


def with_password(url: str, password: str) -> str:
    """The URL with a password (the local test server trusts loopback: it is sent and ignored)."""
    scheme, rest = url.split("://", 1)
    userinfo, _, hosts = rest.rpartition("@")
    return f"{scheme}://{userinfo.split(':')[0] or 'postgres'}:{password}@{hosts}"


SECRET = "pw-never-shown-7f3a"


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_postgres_backup_while_writing_restores_one_consistent_state(tmp_path, pg_databases, make_server):
    src_url = with_password(pg_databases("src"), SECRET)
    dst_url = with_password(pg_databases("dst"), SECRET)
    out = tmp_path / "stigmer.pgdump"
    tokens = make_tokens(("--database-url", src_url))
    src, dst = make_server(database_url=src_url).start(), make_server(database_url=dst_url)
    try:
        acks, began, ended, stdout = backup_during_writes(src, tokens, ("--database-url", src_url), out)
        # a database in use by servers, or holding Stigmer tables, is not restored over
        one_line_error(stigmer("restore", "--database-url", src_url, str(out), "--force", ok=False),
                       "error [in_use]", "stigmer-")
    finally:
        src.stop()
    assert stdout.startswith(f"wrote {out}: ") and f"schema {SCHEMA}, 2 tenants" in stdout, stdout
    assert SECRET not in stdout
    restored = stigmer("restore", "--database-url", dst_url, str(out))
    assert "restored" in restored.stdout and SECRET not in restored.stdout + restored.stderr
    dst.start()
    check_restored(dst.url, tokens, acks, began, ended, stdout)
    dst.stop()
    p = stigmer("restore", "--database-url", dst_url, str(out), ok=False)
    assert SECRET not in one_line_error(p, "error [exists]", "entries", "--force")


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_postgres_restore_force_replaces_and_damage_is_refused(tmp_path, pg_databases, make_server):
    a_url, b_url = pg_databases("a"), pg_databases("b")
    a, b = make_server(database_url=a_url), make_server(database_url=b_url)
    for s, value in ((a, "from the backup"), (b, "already here")):
        s.start()
        for i in range(30 if s is a else 5):
            # ~4 KB of incompressible text a row, so the table data (not the schema's SQL, whose damage only
            # fails the restore itself) fills the second half of the archive, where the damage goes
            pad = {"pad": secrets.token_hex(2048)} if s is a else {}
            assert httpx.put(f"{s.url}/v1/kv/{NS}/k{i}", json={"v": value, "i": i, **pad}).status_code == 201
        s.stop()
    good = tmp_path / "a.pgdump"
    stigmer("backup", "--database-url", a_url, str(good))
    data = good.read_bytes()
    mid = (data.rindex(b"CREATE") + len(data)) // 2  # inside the table data, after the schema text (the TOC)
    damaged = {"truncated.pgdump": data[: len(data) // 2],
               "flipped.pgdump": data[:mid] + bytes(b ^ 0x5A for b in data[mid:][:64]) + data[mid + 64:],
               "text.pgdump": b"not an archive\n"}
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        p = stigmer("restore", "--database-url", b_url, str(tmp_path / name), "--force", ok=False)
        one_line_error(p, "error [invalid_backup]", name)
    # a changed byte in the archive's table of contents (schema text) passes pg_restore's reading; not the checksum
    toc = data.index(b"CREATE TABLE")
    (tmp_path / "toc.pgdump").write_bytes(data[:toc] + b"CREATE TABLF" + data[toc + 12:])
    (tmp_path / "toc.pgdump.sha256").write_text((tmp_path / "a.pgdump.sha256").read_text())
    p = stigmer("restore", "--database-url", b_url, str(tmp_path / "toc.pgdump"), "--force", ok=False)
    one_line_error(p, "error [invalid_backup]", "does not match its checksum file")
    b.start()  # nothing was replaced
    assert httpx.get(f"{b.url}/v1/kv/{NS}/k3").json()["value"] == {"v": "already here", "i": 3}
    assert httpx.get(f"{b.url}/v1/kv/{NS}/k20").status_code == 404
    b.stop()
    stigmer("restore", "--database-url", b_url, str(good), "--force")
    b.start()
    assert httpx.get(f"{b.url}/v1/kv/{NS}/k3").json()["value"].items() >= {"v": "from the backup", "i": 3}.items()
    assert httpx.get(f"{b.url}/v1/revision").json()["revision"] == 30
    assert httpx.put(f"{b.url}/v1/kv/{NS}/new", json=1).json()["mod_revision"] == 31
    b.stop()


def test_postgres_errors_never_show_the_password(tmp_path, pg_databases):
    url = pg_databases("pw")
    missing = with_password(url.rsplit("/", 1)[0] + f"/stigmer_bk_{os.getpid()}_absent", SECRET)
    p = stigmer("backup", "--database-url", missing, str(tmp_path / "x.pgdump"), ok=False)
    line = one_line_error(p, "error [backup_failed]", "pg_dump", "absent")
    assert SECRET not in line and not (tmp_path / "x.pgdump").exists()
    assert list(tmp_path.iterdir()) == []
    p = stigmer("backup", "--database-url", with_password(url, SECRET), str(tmp_path / "empty.pgdump"), ok=False)
    one_line_error(p, "error [invalid_backup]", "not of a Stigmer database")  # an empty database


def test_missing_postgres_tools_are_named(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    for cmd in ("backup", "restore"):
        p = stigmer(cmd, "--database-url", "postgresql://postgres@127.0.0.1/x", str(tmp_path / "f.pgdump"), ok=False,
                    PATH=str(empty))
        if cmd == "restore":
            one_line_error(p, "error [not_found]")  # the file is checked first
            (tmp_path / "f.pgdump").write_bytes(b"x")
            p = stigmer(cmd, "--database-url", "postgresql://postgres@127.0.0.1/x", str(tmp_path / "f.pgdump"),
                        ok=False, PATH=str(empty))
        one_line_error(p, "error [tool_missing]", "postgresql-client")


# ---- the examples in docs/backup.md, run as written ------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "backup.md"


def doc_examples(kind: str) -> list[tuple[str, list[str]]]:
    """(script, the output shown after it) of each `sh` block of docs/backup.md marked as run here for `kind`."""
    lines = DOC.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if line != "```sh" or f"test_backup.py runs these commands ({kind})" not in lines[i - 1]:
            continue
        end = lines.index("```", i + 1)
        nxt = next(k for k in range(end + 1, len(lines)) if lines[k].startswith("```"))
        shown = lines[nxt + 1: lines.index("```", nxt + 1)] if lines[nxt] == "```" else []
        found.append(("\n".join(lines[i + 1: end]), shown))
    assert found, f"no {kind} examples in {DOC}"
    return found


def shape(text: str, cwd: Path) -> list[str]:
    """Output lines with what differs from run to run (numbers, the directory, a database URL) made alike."""
    text = text.replace(str(cwd), "/srv/stigmer")
    text = re.sub(r"postgresql://\S+(?=: )", "URL", text)
    return re.sub(r"\d+(\.\d+)?", "N", text).strip().splitlines()


def run_example(script: str, cwd: Path, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STIGMER_", "PG"))}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `stigmer` as installed
    p = subprocess.run(["sh", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60,
                       env={**base, "PATH": path, "NO_COLOR": "1", **env})
    assert p.returncode == 0, f"{script}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
    return p.stdout


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_the_sqlite_examples_in_the_docs_are_true(tmp_path, start_server):
    (backup_script, backup_shown), (restore_script, restore_shown) = doc_examples("SQLite")
    server = start_server(tmp_path / "data")
    for i in range(41):
        assert httpx.put(f"{server.url}/v1/kv/agents/a{i % 5}", json=i).status_code in (200, 201)
    assert shape(run_example(backup_script, tmp_path), tmp_path) == shape("\n".join(backup_shown), tmp_path)
    server.stop()
    assert shape(run_example(restore_script, tmp_path), tmp_path) == shape("\n".join(restore_shown), tmp_path)
    restored = start_server(tmp_path / "restored")
    assert httpx.get(f"{restored.url}/v1/kv/agents/a0").json()["value"] == 40


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_the_postgres_examples_in_the_docs_are_true(tmp_path, pg_databases, start_server):
    [(script, shown)] = doc_examples("PostgreSQL")
    src_url, new_url = pg_databases("doc_src"), pg_databases("doc_new")
    server = start_server(tmp_path / "src", database_url=src_url)
    for i in range(41):
        assert httpx.put(f"{server.url}/v1/kv/agents/a{i % 5}", json=i).status_code in (200, 201)
    out = run_example(script, tmp_path, STIGMER_DATABASE_URL=src_url, NEW_DATABASE_URL=new_url)
    assert shape(out, tmp_path) == shape("\n".join(shown), tmp_path)
    server.stop()
    restored = start_server(tmp_path / "new", database_url=new_url)
    assert httpx.get(f"{restored.url}/v1/kv/agents/a0").json()["value"] == 40
