"""Options shared by the commands that talk to a running server."""

from __future__ import annotations

import click


def client_options(fn):
    """`--url`, `--api-key` and `--json`, in that order in `--help`."""
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables.")(fn)
    fn = click.option("--api-key", envvar="STIGMER_API_KEY", default=None,
                      help="API key, sent as a bearer token [STIGMER_API_KEY].")(fn)
    fn = click.option("--url", envvar="STIGMER_URL", default="http://127.0.0.1:7474", show_default=True,
                      help="Server URL [STIGMER_URL].")(fn)
    return fn
