"""`stigmer keys create | list | revoke`: offline against a data directory, or online through /v1/admin."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import sys
from typing import Any, Awaitable, Callable, NamedTuple

import click

from .cli_options import client_options

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, now: float) -> float:
    """`30d`, `12h`, `90m`, `3600s`, `2w`, or an RFC 3339 time."""
    m = _DURATION.fullmatch(text.strip())
    if m:
        return now + int(m.group(1)) * _UNIT[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use a duration like 30d, 12h, 90m or an RFC 3339 time") from None
    if when.tzinfo is None:
        raise click.BadParameter("an RFC 3339 time needs a time zone (Z or +hh:mm)")
    return when.timestamp()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def _record(r: Any) -> dict[str, Any]:
    return {"id": r.id, "tenant": r.tenant, "name": r.name, "scopes": list(r.scopes), "prefixes": list(r.prefixes),
            "created_at": _iso(r.created_at), "expires_at": _iso(r.expires_at),
            "last_used_at": _iso(r.last_used_at), "revoked_at": _iso(r.revoked_at), "active": r.revoked_at is None}


class Offline(NamedTuple):
    """The store to work on directly, without a server."""

    data_dir: str | None
    database_url: str | None


def _offline(target: Offline, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from .clock import SystemClock
    from .config import Settings
    from .engine.errors import EngineError
    from .engine.keys import Keys
    from .store.select import open_store

    async def run() -> Any:
        store = open_store(Settings.load({k: v for k, v in target._asdict().items() if v}, environ={}), SystemClock())
        await store.open()
        try:
            return await work(Keys(store.keys))
        finally:
            await store.close()

    from .store.sqlite.lock import DataDirInUse

    try:
        return asyncio.run(run())
    except EngineError as exc:
        _fail(exc.code, exc.message)
    except DataDirInUse as exc:  # a second writer would corrupt the revision numbering
        _fail("data_dir_in_use", f"{exc}; stop it, or manage keys through it with --url and an admin --api-key")


def _online(url: str, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=10, **kwargs)
    except httpx.HTTPError as exc:
        _fail("unavailable", f"{type(exc).__name__}: {exc}")
    if r.is_success:
        return r.json()
    try:
        err = r.json()["error"]
        _fail(err["code"], err["message"])
    except (ValueError, KeyError, TypeError):
        _fail(str(r.status_code), r.text[:200])


def _fail(code: str, message: str) -> None:
    click.secho(f"error [{code}]: {message}", fg="red", err=True)
    sys.exit(1)


def _target(fn):
    """Online (`--url`, an admin `--api-key`) or offline (`--data-dir` or `--database-url`): the command
    gets `offline`, an Offline or None."""
    @functools.wraps(fn)
    def wrapper(*args, data_dir: str | None, database_url: str | None, **kwargs):
        offline = Offline(data_dir, database_url) if data_dir or database_url else None
        return fn(*args, offline=offline, **kwargs)

    wrapper = client_options(wrapper)
    wrapper = click.option("--database-url", default=None,
                           help="Offline: work on this PostgreSQL database instead of a running server.")(wrapper)
    return click.option("--data-dir", default=None,
                        help="Offline: work on this data directory instead of a running server.")(wrapper)


def _show(records: list[dict[str, Any]], as_json: bool) -> None:
    import msgspec
    from rich.console import Console
    from rich.table import Table

    if as_json:
        click.echo(msgspec.json.encode(records).decode())
        return
    t = Table("id", "tenant", "name", "scopes", "prefixes", "created", "expires", "last used", "state")
    for r in records:
        state = "active" if r["active"] else f"revoked {r['revoked_at']}"
        t.add_row(r["id"], r["tenant"], r["name"], ",".join(r["scopes"]), ",".join(r["prefixes"]) or "*",
                  r["created_at"], r["expires_at"] or "never", r["last_used_at"] or "never", state)
    Console().print(t)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (offline with --data-dir or --database-url, else online with an admin
    key)."""


@keys.command()
@click.option("--tenant", default="default", show_default=True, help="The tenant the key belongs to.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="read, write, watch, admin, a fine scope (state:read, claim:write, …), `<resource>:*` or `*`;"
                   " repeat or separate with commas (docs/tokens.md).")
@click.option("--prefix", "prefixes", multiple=True, help="Limit the key to NS or NS/KEY-PREFIX; repeatable.")
@click.option("--expires", default=None, help="Expiry: a duration (30d, 12h, 90m) or an RFC 3339 time.")
@click.option("--name", default="", help="A label shown by `keys list`.")
@click.option("--format", "secret_format", type=click.Choice(["stigmer", "agentstate"]), default="stigmer",
              show_default=True, help="The secret's shape: stg_… or, for AgentState clients, as_live_….")
@click.option("--import-from-env", "import_var", default=None, metavar="VAR",
              help="Offline: keep an existing key (32+ characters) read from this environment variable.")
@_target
def create(tenant: str, scopes: tuple[str, ...], prefixes: tuple[str, ...], expires: str | None, name: str,
           secret_format: str, import_var: str | None, offline: Offline | None, url: str, api_key: str | None, as_json: bool) -> None:
    """Create a key and print it once: it is stored only as a SHA-256 digest."""
    import os
    import time

    import msgspec

    scope_list = [s for item in scopes for s in item.split(",") if s.strip()]
    expires_at = parse_expiry(expires, time.time()) if expires else None
    imported = None
    if import_var is not None:
        if offline is None:
            raise click.UsageError("--import-from-env works offline only (with --data-dir or --database-url)")
        imported = os.environ.get(import_var)
        if not imported:
            raise click.UsageError(f"the environment variable {import_var} is not set")
    if offline is not None:
        created = _offline(offline, lambda k: k.create(tenant, scope_list, prefixes, name=name, expires_at=expires_at,
                                                        secret=imported, secret_format=secret_format))
        record, secret = _record(created.record), created.secret
    else:
        body: dict[str, Any] = {"tenant": tenant, "scopes": scope_list, "prefixes": list(prefixes), "name": name,
                                "format": secret_format}
        if expires_at is not None:
            body["expires_at"] = _iso(expires_at)
        out = _online(url, api_key, "POST", "/v1/admin/keys", json=body)
        record, secret = out["key"], out["secret"]
    if as_json:
        click.echo(msgspec.json.encode({"key": record, "secret": secret}).decode())
        return
    click.echo(secret)
    click.secho(f"key {record['id']} for tenant {record['tenant']} ({','.join(record['scopes'])}): "
                "this is the only time it is shown", fg="yellow", err=True)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@_target
def list_(tenant: str | None, offline: Offline | None, url: str, api_key: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    if offline is not None:
        records = [_record(r) for r in _offline(offline, lambda k: k.list(tenant))]
    else:
        records = _online(url, api_key, "GET", "/v1/admin/keys", params={"tenant": tenant} if tenant else None)["keys"]
    _show(records, as_json)


@keys.command()
@click.argument("key_id")
@_target
def revoke(key_id: str, offline: Offline | None, url: str, api_key: str | None, as_json: bool) -> None:
    """Revoke a key by id; requests with it are refused from the next one on."""
    if offline is not None:
        record = _record(_offline(offline, lambda k: k.revoke(key_id)))
    else:
        record = _online(url, api_key, "DELETE", f"/v1/admin/keys/{key_id}")["key"]
    if as_json:
        import msgspec

        click.echo(msgspec.json.encode(record).decode())
    else:
        click.secho(f"revoked {record['id']} (tenant {record['tenant']})", fg="green")
