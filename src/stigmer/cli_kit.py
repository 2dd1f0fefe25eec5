"""Helpers of the commands that talk to a running server through the sync SDK: errors, JSON, output."""

from __future__ import annotations

import string
import sys
from typing import Any

import click


def json_arg(raw: str, what: str) -> object:
    import json

    try:
        return json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"{what} must be JSON ({exc})") from None


def dump(obj: object) -> str:
    import msgspec

    return msgspec.json.encode(obj).decode()


class Run:
    """Open a client; turn SDK errors into `error [code]: message` (or a JSON envelope) and exit 1."""

    def __init__(self, url: str, as_json: bool, api_key: str | None = None):
        self.url, self.as_json, self.api_key = url, as_json, api_key

    def __enter__(self):
        from .client import Client

        self.client = Client(self.url, api_key=self.api_key)
        return self.client

    def __exit__(self, typ, exc, tb) -> bool:
        from .client import StigmerError

        self.client.close()
        if isinstance(exc, StigmerError):
            if self.as_json:
                body = {"code": exc.code, "message": exc.message, "status": exc.status}
                if exc.details:
                    body["details"] = exc.details
                click.echo(dump({"error": body}), err=True)
            else:
                click.secho(f"error [{exc.code}]: {exc.message}", fg="red", err=True)
            sys.exit(1)
        if isinstance(exc, KeyboardInterrupt):
            sys.exit(130)
        return False


def esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def console():
    from rich.console import Console

    return Console()


def when(t: Any) -> str:
    """A datetime (or None) as the tables show it."""
    return "never" if t is None else t.isoformat(timespec="milliseconds")


def show_fields(rows: list[tuple[str, Any]]) -> None:
    """A two-column table of one object's members (plain text, never markup)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(show_header=False, box=None)
    t.add_column(style="bold cyan")
    t.add_column()
    for name, value in rows:
        t.add_row(name, value if not isinstance(value, str) else Text(value))
    console().print(t)


_FENCE_SAFE = string.ascii_letters + string.digits + string.punctuation  # printable ASCII but space


def fence_arg(text: str | None) -> str | None:
    """`RESOURCE:TOKEN` as given (or as `lease acquire` printed it) for the X-Stigmer-Fence header: what a
    header cannot carry (spaces, non-ASCII) is percent-encoded; the server checks the rest."""
    if text is None:
        return None
    from urllib.parse import quote

    resource, sep, token = text.strip().rpartition(":")
    if not sep or not resource or not token.isdigit():
        raise click.BadParameter("a fence is RESOURCE:TOKEN (the `fence` that `stigmer lease acquire` prints)",
                                 param_hint="--fence")
    return f"{quote(resource, safe=_FENCE_SAFE)}:{token}"
