"""`stigmer backup` and `stigmer restore`: a SQLite data directory or a PostgreSQL database, to and from a file."""

from __future__ import annotations

import os
import sys

import click

from .store.backups import BackupError, Summary


def _where(data_dir: str | None, database_url: str | None) -> tuple[str | None, str | None]:
    """(data_dir, database_url), one of them None: the option given, else what `serve` would use."""
    if data_dir and database_url:
        raise click.UsageError("give --data-dir or --database-url, not both")
    if data_dir or database_url:
        return data_dir, database_url
    url = os.environ.get("STIGMER_DATABASE_URL")
    return (None, url) if url else (os.environ.get("STIGMER_DATA_DIR") or "./data", None)


def _options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(fn)
    fn = click.option("--database-url", default=None,
                      help="A PostgreSQL store (postgresql://...) [STIGMER_DATABASE_URL].")(fn)
    return click.option("--data-dir", default=None,
                        help="A SQLite data directory [STIGMER_DATA_DIR, default ./data].")(fn)


def _report(summary: Summary, text: str, as_json: bool, **extra: str) -> None:
    if as_json:
        import msgspec

        click.echo(msgspec.json.encode({"file": summary.path, "size": summary.size,
                                        "schema_version": summary.schema_version, "revisions": summary.revisions,
                                        "checksum": summary.checksum, **extra}).decode())
    else:
        click.echo(f"{text}: {summary.details()}")


def _fail(code: str, message: str) -> None:
    click.secho(f"error [{code}]: {message}", fg="red", err=True)
    sys.exit(1)


def _guarded(work, failed: str):
    """Run `work()`; a refusal or failure is one line on stderr and exit 1 (`failed` is the code of an
    unforeseen file-system error), Ctrl-C exit 130."""
    from .store.sqlite.lock import DataDirInUse

    try:
        return work()
    except BackupError as exc:
        _fail(exc.code, exc.message)
    except DataDirInUse as exc:
        _fail("data_dir_in_use", f"{exc}; stop it first")
    except OSError as exc:
        _fail(failed, f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


@click.command()
@click.argument("out_file", type=click.Path(dir_okay=False))
@_options
def backup(out_file: str, data_dir: str | None, database_url: str | None, as_json: bool) -> None:
    """Write a consistent, verified snapshot of the store to OUT_FILE (safe while servers run and write)."""
    data_dir, database_url = _where(data_dir, database_url)
    if database_url:
        from .store import pg_backup

        summary = _guarded(lambda: pg_backup.backup(database_url, out_file), "backup_failed")
    else:
        from .store.sqlite import backup as sqlite_backup

        summary = _guarded(lambda: sqlite_backup.backup(data_dir, out_file), "backup_failed")
    _report(summary, f"wrote {out_file}", as_json)


@click.command()
@click.argument("in_file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing database (PostgreSQL: drop and recreate its tables).")
@_options
def restore(in_file: str, force: bool, data_dir: str | None, database_url: str | None, as_json: bool) -> None:
    """Verify IN_FILE, then restore it into the store (no server may be using it)."""
    data_dir, database_url = _where(data_dir, database_url)
    if database_url:
        from .store import pg_backup

        summary = _guarded(lambda: pg_backup.restore(database_url, in_file, force=force), "restore_failed")
        into = _guarded(lambda: pg_backup.Target(database_url).shown, "restore_failed")
    else:
        from .store.sqlite import backup as sqlite_backup

        summary = _guarded(lambda: sqlite_backup.restore(data_dir, in_file, force=force), "restore_failed")
        into = os.path.abspath(data_dir)
    _report(summary, f"restored {in_file} into {into}", as_json, into=into)
