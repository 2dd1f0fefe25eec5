"""The `stigmer` command: `serve`, and key, lease, token and claim commands against a running server."""

from __future__ import annotations

import sys

import click

from .cli_kit import Run as _Run, console as _console, dump as _dump, esc as _esc, fence_arg
from .cli_kit import json_arg as _json_arg
from .cli_options import client_options
from .config import SETTINGS, Settings, SettingsError


def _help_settings(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for s in SETTINGS:
        also = f" (also {', '.join(s.aliases)})" if s.aliases else ""
        click.echo(f"{s.env:<38} {s.type.__name__:<6} default {s.default!r}{also}\n    {s.help}")
    ctx.exit()


@click.group()
@click.version_option(package_name="stigmer", prog_name="stigmer", message="%(prog)s %(version)s")
def main() -> None:
    """Stigmer: shared state, coordination and memory for fleets of AI agents."""


@main.command()
@click.option("--host", default=None, help="Address to listen on [STIGMER_HOST, default 127.0.0.1].")
@click.option("--port", default=None, type=int, help="Port [STIGMER_PORT, default 7474].")
@click.option("--data-dir", default=None, help="Data directory [STIGMER_DATA_DIR, default ./data].")
@click.option("--database-url", default=None,
              help="Use this PostgreSQL (postgresql://...) instead of SQLite [STIGMER_DATABASE_URL].")
@click.option("--allow-open-remote", is_flag=True, default=None,
              help="Serve a non-loopback address even in open mode [STIGMER_ALLOW_OPEN_REMOTE].")
@click.option("--head-timeout", type=float, default=None,
              help="Seconds a client has to send a request head [STIGMER_HEAD_TIMEOUT_SECONDS, default 10].")
@click.option("--server", "server_impl", type=click.Choice(["uvicorn", "granian"]), default=None,
              help="HTTP server [STIGMER_SERVER, default uvicorn]; granian is opt-in: pip install 'stigmer[granian]'.")
@click.option("--http", "http_impl", type=click.Choice(["httptools", "h11"]), default="httptools", hidden=True)
@click.option("--help-settings", is_flag=True, expose_value=False, is_eager=True, callback=_help_settings,
              help="List every setting with its environment variable and default.")
def serve(host: str | None, port: int | None, data_dir: str | None, database_url: str | None,
          allow_open_remote: bool | None, head_timeout: float | None, server_impl: str | None,
          http_impl: str) -> None:
    """Run the server (embedded SQLite store, or PostgreSQL with --database-url)."""
    from .server import run

    try:
        settings = Settings.load({"host": host, "port": port, "data_dir": data_dir, "database_url": database_url,
                                  "allow_open_remote": allow_open_remote, "head_timeout_seconds": head_timeout,
                                  "server": server_impl})
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    check_server(settings)
    check_store(settings)
    check_webhooks(settings)
    refuse_open_exposure(settings)
    if settings.server == "granian":
        from .server import run_granian

        run_granian(settings)
    else:
        run(settings, http=http_impl)


def check_server(settings: Settings) -> None:
    if settings.server not in ("uvicorn", "granian"):
        raise click.UsageError(f"setting server (STIGMER_SERVER) must be uvicorn or granian, got {settings.server!r}")
    if settings.server == "granian":
        try:
            import granian  # noqa: F401
        except ImportError:
            raise click.ClickException("--server granian needs granian: pip install 'stigmer[granian]'") from None


def check_webhooks(settings: Settings) -> None:
    url = settings.webhook_url.strip()
    if url and not url.startswith(("http://", "https://")):
        raise click.UsageError(f"setting webhook_url (STIGMER_WEBHOOK_URL) must be an http:// or https:// URL, got {url!r}")


def check_store(settings: Settings) -> None:
    """Fail with a clear message, before serving, when the configured store cannot be used."""
    if settings.database_url:
        if not settings.database_url.startswith(("postgresql://", "postgres://")):
            raise click.UsageError("--database-url must be a postgresql:// URL")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise click.ClickException("the PostgreSQL store needs psycopg: pip install 'stigmer[postgres]'") from None
        _try_open(settings)
        return
    from .store.sqlite.lock import DataDirInUse, check_free
    from .store.sqlite.store import check_data_dir

    try:
        check_data_dir(settings.data_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot write the data directory {settings.data_dir}: {exc.strerror or exc}"
                                   " (Stigmer keeps its database there and must be able to write it)") from None
    try:
        check_free(settings.data_dir)  # the store takes the lock itself; this turns "in use" into one line
    except DataDirInUse as exc:
        raise click.ClickException(str(exc)) from None


def _try_open(settings: Settings) -> None:
    """Open and close the configured store once (migrating it), so that an unreachable or unusable database is
    one clear line at start-up, not a traceback from the server's start-up."""
    import asyncio

    from .clock import SystemClock
    from .engine.errors import EngineError
    from .store.select import open_store

    async def attempt() -> None:
        store = open_store(settings, SystemClock())
        await store.open()
        await store.close()

    try:
        asyncio.run(attempt())
    except EngineError as exc:
        reason = exc.details.get("reason")
        raise click.ClickException(exc.message + (f": {reason}" if reason else "")) from None
    except RuntimeError as exc:  # e.g. a database that is not UTF8
        raise click.ClickException(str(exc)) from None


def refuse_open_exposure(settings: Settings) -> None:
    """Open mode (no API key) serves loopback only, unless forced."""
    from .api.edge import is_loopback_host
    from .store.select import keys_exist

    if is_loopback_host(settings.host) or settings.admin_key or keys_exist(settings):
        return
    if not settings.allow_open_remote:
        raise click.UsageError(
            f"refusing to serve {settings.host} in open mode (no API key exists): anyone who can reach it could "
            "read and write everything. Create a key first (`stigmer keys create --data-dir DIR --scope admin`), "
            "set STIGMER_ADMIN_KEY, or pass --allow-open-remote.")
    click.secho(f"warning: open mode (no API keys) on a non-loopback address {settings.host}: "
                "anyone who can reach it can read and write everything", fg="red", err=True)


# ---- key commands against a running server (the sync SDK) ----------------------------------------

def _show_entry(entry, as_json: bool) -> None:
    if as_json:
        click.echo(_dump(entry))
        return
    from rich.json import JSON
    from rich.table import Table
    from rich.text import Text

    t = Table(show_header=False, box=None)
    t.add_column(style="bold cyan")
    t.add_column()
    t.add_row("key", Text(f"{entry.namespace}/{entry.key}"))
    t.add_row("version", str(entry.version))
    t.add_row("revision", f"{entry.mod_revision} (created {entry.create_revision})")
    t.add_row("updated", entry.updated_at.isoformat())
    if entry.expires_at is not None:
        t.add_row("expires", entry.expires_at.isoformat())
    t.add_row("value", JSON(_dump(entry.value)))
    _console().print(t)


@main.command()
@click.argument("namespace")
@click.argument("key")
@client_options
def get(namespace: str, key: str, url: str, api_key: str | None, as_json: bool) -> None:
    """Read a key (exit 1 with not_found when absent)."""
    with _Run(url, as_json, api_key) as c:
        _show_entry(c.get(namespace, key), as_json)


@main.command()
@click.argument("namespace")
@click.argument("key")
@click.argument("value")
@click.option("--ttl", type=float, default=None, help="Expire after this many seconds.")
@click.option("--if-version", type=int, default=None, help="Write only over this version.")
@click.option("--create", "create_only", is_flag=True, help="Write only if the key is absent.")
@click.option("--fence", default=None, metavar="RESOURCE:TOKEN",
              help="Apply only while this is the resource's active lease (`stigmer lease acquire` prints it).")
@client_options
def put(namespace: str, key: str, value: str, ttl: float | None, if_version: int | None, create_only: bool,
        fence: str | None, url: str, api_key: str | None, as_json: bool) -> None:
    """Write VALUE (JSON; `-` reads it from stdin) at a key."""
    data = _json_arg(sys.stdin.read() if value == "-" else value, "VALUE")
    with _Run(url, as_json, api_key) as c:
        e = c.put(namespace, key, data, ttl=ttl, if_version=if_version, create_only=create_only,
                  fence=fence_arg(fence))
        if as_json:
            click.echo(_dump(e))
        else:
            _console().print(f"[green]ok[/] {_esc(namespace)}/{_esc(key)} version {e.version} revision {e.mod_revision}")


@main.command()
@click.argument("namespace")
@click.argument("key")
@click.option("--incr", type=float, default=None, help="Add N to the number (or to --field).")
@click.option("--field", default=None, help="With --incr: the object member holding the number.")
@click.option("--merge", "merge_", default=None, help="Merge this JSON object into the value.")
@click.option("--deep", is_flag=True, help="With --merge: merge nested objects; null deletes.")
@click.option("--append", "append_", default=None, help="Append this JSON value to the list.")
@click.option("--max", "max_items", type=int, default=None, help="With --append: keep the newest N items.")
@click.option("--json-patch", default=None, help="Apply this RFC 6902 JSON Patch (a JSON list of ops).")
@click.option("--ttl", type=float, default=None, help="Set a new expiry in seconds.")
@click.option("--if-version", type=int, default=None, help="Apply only over this version.")
@click.option("--fence", default=None, metavar="RESOURCE:TOKEN",
              help="Apply only while this is the resource's active lease (`stigmer lease acquire` prints it).")
@client_options
def patch(namespace: str, key: str, incr: float | None, field: str | None, merge_: str | None, deep: bool,
          append_: str | None, max_items: int | None, json_patch: str | None, ttl: float | None,
          if_version: int | None, fence: str | None, url: str, api_key: str | None, as_json: bool) -> None:
    """Change a key atomically: exactly one of --incr, --merge, --append, --json-patch."""
    given = [n for n, v in (("--incr", incr), ("--merge", merge_), ("--append", append_), ("--json-patch", json_patch))
             if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --incr, --merge, --append, --json-patch")
    opts = {"ttl": ttl, "if_version": if_version, "fence": fence_arg(fence)}
    with _Run(url, as_json, api_key) as c:
        if incr is not None:
            amount = int(incr) if incr.is_integer() else incr
            e = c.incr(namespace, key, amount, field=field, **opts)
        elif merge_ is not None:
            e = c.merge(namespace, key, _json_arg(merge_, "--merge"), deep=deep, **opts)
        elif append_ is not None:
            e = c.append(namespace, key, _json_arg(append_, "--append"), max_items=max_items, **opts)
        else:
            e = c.patch(namespace, key, _json_arg(json_patch, "--json-patch"), **opts)
        _show_entry(e, as_json)


@main.command()
@click.argument("namespace")
@click.argument("key")
@click.option("--if-version", type=int, default=None, help="Delete only this version.")
@click.option("--fence", default=None, metavar="RESOURCE:TOKEN",
              help="Apply only while this is the resource's active lease (`stigmer lease acquire` prints it).")
@client_options
def delete(namespace: str, key: str, if_version: int | None, fence: str | None, url: str, api_key: str | None,
           as_json: bool) -> None:
    """Delete a key (exit 1 with not_found when absent)."""
    with _Run(url, as_json, api_key) as c:
        d = c.delete(namespace, key, if_version=if_version, fence=fence_arg(fence))
        if as_json:
            click.echo(_dump(d))
        else:
            _console().print(f"[green]deleted[/] {_esc(namespace)}/{_esc(key)} (was version {d.version}) revision {d.revision}")


@main.command("list")
@click.argument("namespace")
@click.option("--prefix", default=None, help="Only keys starting with this.")
@click.option("--limit", type=int, default=None, help="At most this many entries (default: all).")
@click.option("--keys-only", is_flag=True, help="Leave the values out.")
@client_options
def list_(namespace: str, prefix: str | None, limit: int | None, keys_only: bool, url: str, api_key: str | None, as_json: bool) -> None:
    """List live keys of a namespace by key order (a JSON array with --json)."""
    import itertools

    with _Run(url, as_json, api_key) as c:
        page = min(limit, 1000) if limit else None
        entries = list(itertools.islice(c.list(namespace, prefix=prefix, page_size=page, values=not keys_only), limit))
        if as_json:
            click.echo(_dump(entries))
            return
        from rich.table import Table
        from rich.text import Text

        t = Table("key", "version", "revision", "value")
        for e in entries:
            v = "" if keys_only else _dump(e.value)
            t.add_row(Text(e.key), str(e.version), str(e.mod_revision), Text(v if len(v) <= 80 else v[:77] + "..."))
        _console().print(t)


@main.command()
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@click.option("--prefix", default=None, help="Only keys starting with this (needs --namespace).")
@click.option("--key", default=None, help="Only this key (needs --namespace).")
@click.option("--from", "from_revision", type=int, default=None, help="Start at this revision (inclusive).")
@client_options
def watch(namespace: str | None, prefix: str | None, key: str | None, from_revision: int | None, url: str,
          api_key: str | None, as_json: bool) -> None:
    """Stream changes until Ctrl-C (one JSON change set per line with --json); resumes across reconnects."""
    with _Run(url, as_json, api_key) as c:
        from rich.markup import escape

        console = None if as_json else _console()
        for cs in c.watch(namespace, prefix=prefix, key=key, from_revision=from_revision):
            if console is None:
                click.echo(_dump(cs))
                sys.stdout.flush()
                continue
            for ch in cs.changes:
                colour = {"put": "green", "delete": "red", "expire": "yellow"}[ch.type]
                value = f" = {escape(_dump(ch.value))}" if ch.type == "put" else ""
                console.print(f"[dim]{cs.revision}[/] [{colour}]{ch.type}[/] {escape(ch.namespace)}/{escape(ch.key)}"
                              f" [dim]v{ch.version}[/]{value}", highlight=False)

@main.command()
@click.option("--url", envvar="STIGMER_URL", default="http://127.0.0.1:7474", show_default=True,
              help="Server URL [STIGMER_URL].")
@click.option("--api-key", envvar="STIGMER_API_KEY", default=None,
              help="API key or capability token the tools act with [STIGMER_API_KEY].")
def mcp(url: str, api_key: str | None) -> None:
    """Serve the MCP tools over stdio (for desktop MCP clients), acting on the server at --url."""
    try:
        from .integrations.mcp.stdio import run
    except ModuleNotFoundError as exc:
        if exc.name != "mcp" and not (exc.name or "").startswith("mcp."):
            raise
        raise click.ClickException("`stigmer mcp` needs the mcp package: pip install 'stigmer[mcp]'") from None
    run(url, api_key)


from .backup_cli import backup, restore  # noqa: E402
from .claim_cli import claim  # noqa: E402
from .keys_cli import keys  # noqa: E402
from .lease_cli import lease  # noqa: E402
from .token_cli import token  # noqa: E402

main.add_command(keys)
main.add_command(lease)
main.add_command(token)
main.add_command(claim)
main.add_command(backup)
main.add_command(restore)

if __name__ == "__main__":
    sys.exit(main())
