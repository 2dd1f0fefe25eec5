"""Backup and restore of a SQLite data directory.

A backup is one self-contained SQLite file (rollback journal, no -wal) copied with SQLite's online backup
API in a single step, inside one read transaction: a consistent snapshot of one commit, taken beside a
running server (in WAL mode a reader never blocks the writer). A restore installs a verified copy while
holding the data directory's lock, so no server can be using it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from urllib.parse import quote

from ..backups import BackupError, Summary, check_checksum, install, sha256_of, temp_beside, write_checksum
from .lock import DataDirLock
from .migrations import MIGRATIONS
from .store import DB_FILE

SIDE_FILES = ("-wal", "-shm")


def _open_ro(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def backup(data_dir: str, out_file: str) -> Summary:
    """Write a verified snapshot of `data_dir`'s database to `out_file` (replaced atomically)."""
    db = os.path.join(data_dir, DB_FILE)
    if not os.path.isfile(db):
        raise BackupError("not_found", f"no Stigmer database in {os.path.abspath(data_dir)} (no {DB_FILE})")
    if os.path.abspath(out_file) in {os.path.abspath(db + s) for s in ("", *SIDE_FILES)}:
        raise BackupError("invalid_argument", "the backup file must not be the database itself")
    folder = os.path.dirname(os.path.abspath(out_file))
    if not os.path.isdir(folder):
        raise BackupError("invalid_argument", f"cannot write {out_file}: no directory {folder}")
    with temp_beside(out_file, "partial") as tmp:
        try:
            src = _open_ro(db)
            try:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst)  # pages=-1: one step, one read transaction, one commit's state
                    dst.execute("PRAGMA journal_mode=DELETE")  # one file; the store turns WAL back on
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.Error as exc:
            raise BackupError("backup_failed", f"copying {db} to {out_file} failed: {exc}") from None
        except OSError as exc:
            raise BackupError("backup_failed", f"cannot write {out_file}: {exc.strerror or exc}") from None
        summary = verify(tmp, name=out_file)
        digest = sha256_of(tmp)  # of what was verified
        install(tmp, out_file)
        note = write_checksum(digest, out_file)
    return summary._replace(path=out_file, checksum=note)


def verify(path: str, *, restoring: bool = False, name: str | None = None) -> Summary:
    """Check that `path` is an undamaged Stigmer database and say what it holds; raise BackupError if not.
    `restoring` also refuses a schema newer than this version of Stigmer knows; `name` is the file to name
    in messages (when `path` is a copy of it)."""
    if not os.path.isfile(path):
        raise BackupError("not_found", f"no such file: {path}")
    name = name or path
    try:
        conn = _open_ro(path)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise BackupError("invalid_backup", f"{name} is damaged: " + "; ".join(problems))
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"schema_migrations", "entries", "changes", "tenant_revisions"} <= tables:
                raise BackupError("invalid_backup", f"{name} is a SQLite file but not a Stigmer database")
            version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] or 0
            revisions = dict(conn.execute("SELECT tenant, rev FROM tenant_revisions WHERE tenant <> ''"))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        hint = " (a PostgreSQL archive: restore it with --database-url)" if _starts(path, b"PGDMP") else ""
        raise BackupError("invalid_backup", f"{name} is not a readable Stigmer backup: {exc}{hint}") from None
    known = max(v for v, _ in MIGRATIONS)
    if restoring and version > known:
        raise BackupError("invalid_backup", f"{name} has schema {version}, newer than this Stigmer knows ({known}):"
                                            " restore it with the Stigmer that made it")
    return Summary(path, os.path.getsize(path), version, revisions)


def restore(data_dir: str, in_file: str, *, force: bool = False) -> Summary:
    """Replace `data_dir`'s database with a verified copy of `in_file`. Refuses (DataDirInUse) while a
    store holds the directory, and refuses to replace an existing database unless `force`."""
    if not os.path.isfile(in_file):
        raise BackupError("not_found", f"no such file: {in_file}")
    db = os.path.join(data_dir, DB_FILE)
    if os.path.exists(db) and os.path.samefile(in_file, db):
        raise BackupError("invalid_argument", "the backup file must not be the database itself")
    os.makedirs(data_dir, exist_ok=True)
    with DataDirLock(data_dir):  # held until the new database is in place: no server can start meanwhile
        if os.path.exists(db) and not force:
            raise BackupError("exists", f"{os.path.abspath(db)} already exists: pass --force to replace it"
                                        " (back it up first if you may want it again)")
        with temp_beside(db, "restore") as tmp:
            try:
                shutil.copyfile(in_file, tmp)
            except OSError as exc:
                raise BackupError("restore_failed", f"cannot copy {in_file} into {data_dir}: "
                                                    f"{exc.strerror or exc}") from None
            try:
                note = check_checksum(in_file, copy=tmp)  # the copy to install, not only the original
                summary = verify(tmp, restoring=True, name=in_file)
            finally:
                _remove_side_files(tmp)  # left by reading a copy that was in WAL mode
            _remove_side_files(db)  # first: an old WAL replayed onto the new database would corrupt it
            install(tmp, db)
    return summary._replace(path=in_file, checksum=note)


def _remove_side_files(db: str) -> None:
    for side in SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(db + side)


def _starts(path: str, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic
