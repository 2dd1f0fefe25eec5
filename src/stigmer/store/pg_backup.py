"""Backup and restore of a PostgreSQL store with PostgreSQL's own tools.

`pg_dump --format=custom` takes one snapshot of the database (consistent while replicas write) into a
compressed archive; verifying it reads every block back with `pg_restore` and reads the schema version and
tenant revisions from the archive itself. The URL's password reaches the tools through PGPASSWORD, never
their command line, and is never printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .backups import BackupError, Summary, check_checksum, install, sha256_of, temp_beside, write_checksum

TABLES = ("schema_migrations", "entries", "changes", "tenant_revisions", "tenants", "api_keys", "store_probe",
          "leases", "state_events", "capability_tokens", "claims", "claim_evidence", "claim_runs", "idempotency",
          "conversations", "conversation_tags", "conversation_messages", "conversation_search_tenants",
          "conversation_message_terms", "jobs", "webhook_events", "episodes", "memories", "rate_windows",
          "memory_index", "memory_vectors", "resolutions", "health_states",
          "semvec_sessions", "semvec_session_heads", "semvec_memories", "semvec_entities", "rate_buckets")
_REQUIRED = {"schema_migrations", "entries", "changes", "tenant_revisions"}


class Target:
    """A database URL split into what may be shown and passed on a command line, and the password."""

    def __init__(self, url: str):
        if not url.startswith(("postgresql://", "postgres://")):
            raise BackupError("invalid_argument", "--database-url must be a postgresql:// URL")
        parts = urlsplit(url)
        userinfo, at, hosts = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        query = parse_qsl(parts.query, keep_blank_values=True)
        self.password = unquote(password) or next((v for k, v in query if k == "password"), "")
        netloc = f"{user}{at}{hosts}" if user else hosts
        kept = urlencode([(k, v) for k, v in query if k != "password"])
        self.dsn = urlunsplit((parts.scheme, netloc, parts.path, kept, ""))
        self.shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def env(self) -> dict[str, str]:
        """The tools' environment: the URL's password, if it has one, wins over an inherited PGPASSWORD."""
        return {**os.environ, "PGPASSWORD": self.password} if self.password else dict(os.environ)

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError("tool_missing", f"{name} not found: install PostgreSQL's client tools "
                                          "(Debian: apt-get install postgresql-client), of a major version at "
                                          "least the server's")
    return path


def _run(args: list[str], target: Target | None = None) -> subprocess.CompletedProcess:
    env = target.env() if target else None
    return subprocess.run(args, env=env, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)


def _said(p: subprocess.CompletedProcess, target: Target | None = None) -> str:
    """The tool's own words: its last few error lines."""
    lines = [line.strip() for line in p.stderr.splitlines() if line.strip()]
    text = " / ".join(lines[-3:]) or f"exit status {p.returncode}"
    if p.returncode < 0:
        text += f" ({os.path.basename(p.args[0])} died of signal {-p.returncode})"
    return target.scrub(text) if target else text


def backup(url: str, out_file: str) -> Summary:
    """`pg_dump` the database into `out_file` (replaced atomically once the archive is verified)."""
    target = Target(url)
    pg_dump = _tool("pg_dump")
    with temp_beside(out_file, "partial") as tmp:
        p = _run([pg_dump, "--format=custom", "--no-password", f"--file={tmp}", f"--dbname={target.dsn}"], target)
        if p.returncode != 0:
            raise BackupError("backup_failed", f"pg_dump of {target.shown} failed: {_said(p, target)}")
        summary = verify(tmp, name=out_file)
        digest = sha256_of(tmp)  # of what was verified
        install(tmp, out_file)
        note = write_checksum(digest, out_file)
    return summary._replace(path=out_file, checksum=note)


def verify(path: str, *, name: str | None = None) -> Summary:
    """Check that `path` is a complete archive of a Stigmer database and say what it holds."""
    name = name or path
    if not os.path.isfile(path):
        raise BackupError("not_found", f"no such file: {path}")
    pg_restore = _tool("pg_restore")
    listed = _run([pg_restore, "--list", path])
    if listed.returncode != 0:
        with open(path, "rb") as f:
            sqlite = f.read(16) == b"SQLite format 3\0"
        hint = " (a SQLite backup: restore it with --data-dir)" if sqlite else ""
        raise BackupError("invalid_backup", f"{name} is not a readable PostgreSQL archive: {_said(listed)}{hint}")
    tables = set(re.findall(r"^\d+; \d+ \d+ TABLE DATA \S+ (\w+) ", listed.stdout, re.M))
    if not _REQUIRED <= tables:
        raise BackupError("invalid_backup", f"{name} is a PostgreSQL archive but not of a Stigmer database")
    full = _run([pg_restore, "--file=/dev/null", path])  # reads (and decompresses) every block
    if full.returncode != 0:
        raise BackupError("invalid_backup", f"{name} is damaged: {_said(full)}")
    data = _run([pg_restore, "--data-only", "--table=schema_migrations", "--table=tenant_revisions", "--file=-", path])
    if data.returncode != 0:
        raise BackupError("invalid_backup", f"{name} is damaged: {_said(data)}")
    rows = _copy_rows(data.stdout)
    version = max((int(r[0]) for r in rows.get("schema_migrations", [])), default=0)
    revisions = {_unescape(r[0]): int(r[1]) for r in rows.get("tenant_revisions", []) if r[0]}
    return Summary(name, os.path.getsize(path), version, revisions)


def _copy_rows(script: str) -> dict[str, list[list[str]]]:
    """The rows of each `COPY table (...) FROM stdin;` block of a pg_restore script, by table."""
    out: dict[str, list[list[str]]] = {}
    table = None
    for line in script.splitlines():
        if table is None:
            m = re.match(r"COPY (?:\S+\.)?(\w+) \(.*\) FROM stdin;$", line)
            if m:
                table = m.group(1)
                out[table] = []
        elif line == "\\.":
            table = None
        else:
            out[table].append(line.split("\t"))
    return out


def _unescape(field: str) -> str:
    """COPY text format: backslash escapes."""
    table = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "b": "\b", "f": "\f", "v": "\v"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), m.group(1)), field)


def stigmer_tables(target: Target) -> tuple[list[str], list[str]]:
    """(Stigmer tables in the database's current schema, Stigmer connections open to it besides ours)."""
    try:
        import psycopg
    except ImportError:
        raise BackupError("tool_missing",
                          "restoring PostgreSQL needs psycopg: pip install 'stigmer[postgres]'") from None
    try:
        with psycopg.connect(target.dsn, password=target.password or None, connect_timeout=5,
                             application_name="stigmer-restore") as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s)"
                " ORDER BY tablename", (list(TABLES),))]
            clients = [r[0] for r in conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name LIKE 'stigmer%' ORDER BY 1")]
    except psycopg.Error as exc:
        raise BackupError("unavailable", f"cannot use {target.shown}: {target.scrub(str(exc).strip())}") from None
    return tables, clients


def restore(url: str, in_file: str, *, force: bool = False) -> Summary:
    """`pg_restore` a verified archive into the database, in one transaction. Refuses while Stigmer servers
    are connected, and refuses a database holding Stigmer tables unless `force` (which drops them first)."""
    target = Target(url)
    if not os.path.isfile(in_file):
        raise BackupError("not_found", f"no such file: {in_file}")
    note = check_checksum(in_file)
    summary = verify(in_file)._replace(checksum=note)
    try:
        from .postgres.migrations import MIGRATIONS
    except ImportError as exc:  # psycopg missing: the store's package says what to install
        raise BackupError("tool_missing", str(exc)) from None
    known = max(v for v, _ in MIGRATIONS)
    if summary.schema_version > known:
        raise BackupError("invalid_backup", f"{in_file} has schema {summary.schema_version}, newer than this "
                                            f"Stigmer knows ({known}): restore it with the Stigmer that made it")
    tables, clients = stigmer_tables(target)
    if clients:
        raise BackupError("in_use", f"{target.shown} is in use: {len(clients)} connections of Stigmer servers"
                                    f" ({', '.join(sorted(set(clients)))}); stop them first")
    if tables and not force:
        raise BackupError("exists", f"{target.shown} already holds Stigmer tables ({', '.join(tables)}): pass"
                                    " --force to replace them (back it up first if you may want it again)")
    args = [_tool("pg_restore"), "--no-password", "--no-owner", "--no-privileges", "--exit-on-error",
            "--single-transaction", f"--dbname={target.dsn}"]
    if force:
        args += ["--clean", "--if-exists"]
    p = _run([*args, in_file], target)
    if p.returncode != 0:
        raise BackupError("restore_failed", f"pg_restore into {target.shown} failed (nothing was changed: one "
                                            f"transaction): {_said(p, target)}")
    return summary
