"""`stigmer lease acquire | renew | release | get`: leases and their fencing tokens (docs/leases.md)."""

from __future__ import annotations

import datetime as dt

import click

from .cli_kit import Run, dump, show_fields, when
from .cli_options import client_options


def _state(lease) -> str:
    if lease.released_at is not None:
        return f"released {when(lease.released_at)}"
    return "active" if lease.active else "expired"


def _show(lease, as_json: bool) -> None:
    if as_json:
        click.echo(dump(lease))
        return
    show_fields([("resource", lease.resource), ("lease id", lease.lease_id), ("holder", lease.holder),
                 ("fencing token", str(lease.fencing_token)), ("fence", lease.fence), ("state", _state(lease)),
                 ("created", when(lease.created_at)), ("renewed", when(lease.renewed_at)),
                 ("expires", when(lease.expires_at))])


def _held_by(details: dict) -> str:
    """What a lease_conflict's details say about the lease in the way (or the queue ahead)."""
    if "holder" in details:
        expires = details.get("expires_at")
        if isinstance(expires, (int, float)):
            expires = dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(timespec="milliseconds")
        until = f" until {expires}" if expires else ""
        return f": held by {details['holder']!r} (fencing token {details.get('fencing_token')}){until}"
    if "queued" in details:
        return f": {details['queued']} caller(s) queued ahead (wait with --wait)"
    return ""


def _named(lease_id: str | None, token: int | None) -> None:
    if lease_id is None and token is None:
        raise click.UsageError("name the lease: --lease-id ID or --token N (or both)")


@click.group()
def lease() -> None:
    """Take, renew, release and look at leases. A key write with `--fence RESOURCE:TOKEN` (put, patch, delete)
    applies only while that lease is the resource's active one."""


@lease.command()
@click.argument("resource")
@click.option("--holder", required=True, help="Who takes it (shown to those it refuses).")
@click.option("--ttl", type=float, default=None, help="Seconds it lasts [server default 60].")
@click.option("--wait", type=float, default=None,
              help="Queue up to this many seconds for it, first come first served, instead of failing at once.")
@client_options
def acquire(resource: str, holder: str, ttl: float | None, wait: float | None, url: str, api_key: str | None,
            as_json: bool) -> None:
    """Take RESOURCE's lease and print it (lease id, fencing token, fence, expiry). While another holder's lease
    is active: exit 1 with lease_conflict, naming the holder."""
    from .client import LeaseConflictError

    with Run(url, as_json, api_key) as c:
        try:
            got = c.acquire_lease(resource, holder, ttl=ttl, wait=wait)
        except LeaseConflictError as exc:
            exc.message += _held_by(exc.details)
            raise
        _show(got, as_json)


@lease.command()
@click.argument("resource")
@click.option("--lease-id", default=None, help="The lease's id.")
@click.option("--token", type=int, default=None, help="The lease's fencing token.")
@click.option("--ttl", type=float, default=None, help="New expiry: now + this many seconds [server default 60].")
@client_options
def renew(resource: str, lease_id: str | None, token: int | None, ttl: float | None, url: str,
          api_key: str | None, as_json: bool) -> None:
    """Extend the resource's newest lease to now + ttl. Exit 1 with lease_expired once it expired (stop
    writing: its fence is refused), not_found once released or superseded."""
    _named(lease_id, token)
    with Run(url, as_json, api_key) as c:
        _show(c.renew_lease(resource, lease_id, fencing_token=token, ttl=ttl), as_json)


@lease.command()
@click.argument("resource")
@click.option("--lease-id", default=None, help="The lease's id.")
@click.option("--token", type=int, default=None, help="The lease's fencing token.")
@client_options
def release(resource: str, lease_id: str | None, token: int | None, url: str, api_key: str | None,
            as_json: bool) -> None:
    """Give the resource's newest lease back (exit 1 with not_found once released or superseded)."""
    _named(lease_id, token)
    with Run(url, as_json, api_key) as c:
        _show(c.release_lease(resource, lease_id, fencing_token=token), as_json)


@lease.command()
@click.argument("resource")
@client_options
def get(resource: str, url: str, api_key: str | None, as_json: bool) -> None:
    """Show the resource's newest lease, active or not (exit 1 with not_found if it never had one)."""
    with Run(url, as_json, api_key) as c:
        _show(c.get_lease(resource), as_json)
