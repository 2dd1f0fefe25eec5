"""`stigmer token mint | list | revoke`: capability tokens, minted within the caller's credential (docs/tokens.md)."""

from __future__ import annotations

import datetime as dt

import click

from .cli_kit import Run, console, dump, when
from .cli_options import client_options


def _rfc3339(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use an RFC 3339 time, e.g. 2026-12-31T23:00:00Z", param_hint="--expires-at") from None
    if t.tzinfo is None:
        raise click.BadParameter("an RFC 3339 time needs a time zone (Z or +hh:mm)", param_hint="--expires-at")
    return t


def _split(items: tuple[str, ...]) -> list[str]:
    return [s.strip() for item in items for s in item.split(",") if s.strip()]


def _table(tokens: list) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table()
    for name in ("id", "name", "secret starts", "scopes", "prefixes", "parent", "created", "expires", "last used"):
        t.add_column(name, no_wrap=name in ("id", "parent"))  # ids are copied into `token revoke`
    for k in tokens:
        t.add_row(k.id, Text(k.name), k.key_prefix, ",".join(k.scopes), Text(",".join(k.prefixes) or "*"),
                  k.parent_id or "-", when(k.created_at), when(k.expires_at), when(k.last_used_at))
    console().print(t)


@click.group()
def token() -> None:
    """Mint, list and revoke capability tokens (`as_cap_…`). `--api-key` is the credential they are minted
    within; when it is itself a token, the new one is its child, never wider."""


@token.command()
@click.option("--name", required=True, help="A label shown by `token list`.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="read, write, watch or a fine scope (state:read, lease:write, claim:read, …); repeat or separate"
                   " with commas.")
@click.option("--prefix", "prefixes", multiple=True,
              help="Limit it to NS or NS/KEY-PREFIX; repeatable [default: the minter's own prefixes].")
@click.option("--expires-in", type=float, default=None, metavar="SECONDS", help="Expire this many seconds from now.")
@click.option("--expires-at", default=None, metavar="RFC3339", help="Expire at this time.")
@client_options
def mint(name: str, scopes: tuple[str, ...], prefixes: tuple[str, ...], expires_in: float | None,
         expires_at: str | None, url: str, api_key: str | None, as_json: bool) -> None:
    """Mint a token and print its secret on stdout, once: the server keeps only a digest. Without an expiry or
    prefixes it has the minter's; asking for more than the minter holds exits 1 with forbidden."""
    if expires_in is not None and expires_at is not None:
        raise click.UsageError("give --expires-in or --expires-at, not both")
    at = _rfc3339(expires_at) if expires_at is not None else None
    with Run(url, as_json, api_key) as c:
        made = c.mint_token(name, _split(scopes), prefixes=list(prefixes) or None, expires_in=expires_in,
                            expires_at=at)
    if as_json:
        click.echo(dump(made))
        return
    t = made.token
    click.echo(made.secret)
    click.secho(f"token {t.id} {t.name!r} ({','.join(t.scopes)}; prefixes {','.join(t.prefixes) or '*'}; expires "
                f"{when(t.expires_at)}): the secret above is shown only this once", fg="yellow", err=True)


@token.command("list")
@client_options
def list_(url: str, api_key: str | None, as_json: bool) -> None:
    """List the tenant's tokens that are not revoked, oldest first (all of them for an admin credential or in
    open mode, else those this credential may revoke); never a secret."""
    with Run(url, as_json, api_key) as c:
        tokens = c.list_tokens()
    if as_json:
        click.echo(dump(tokens))
    else:
        _table(tokens)


@token.command()
@click.argument("token_id")
@client_options
def revoke(token_id: str, url: str, api_key: str | None, as_json: bool) -> None:
    """Revoke a token and every token minted from it: requests with them are refused from the next one on."""
    with Run(url, as_json, api_key) as c:
        t = c.revoke_token(token_id)
    if as_json:
        click.echo(dump(t))
    else:
        click.secho(f"revoked {t.id} {t.name!r} and every token minted from it", fg="green")
