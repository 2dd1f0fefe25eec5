"""The `stigmer` command: `serve`, and key commands against a running server."""

from __future__ import annotations

import sys

import click

from .config import SETTINGS, Settings, SettingsError


def _help_settings(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for s in SETTINGS:
        click.echo(f"{s.env:<38} {s.type.__name__:<6} default {s.default!r}\n    {s.help}")
    ctx.exit()


@click.group()
def main() -> None:
    """Stigmer: shared state, coordination and memory for fleets of AI agents."""


@main.command()
@click.option("--host", default=None, help="Address to listen on [STIGMER_HOST, default 127.0.0.1].")
@click.option("--port", default=None, type=int, help="Port [STIGMER_PORT, default 7474].")
@click.option("--data-dir", default=None, help="Data directory [STIGMER_DATA_DIR, default ./data].")
@click.option("--help-settings", is_flag=True, expose_value=False, is_eager=True, callback=_help_settings,
              help="List every setting with its environment variable and default.")
def serve(host: str | None, port: int | None, data_dir: str | None) -> None:
    """Run the server (embedded SQLite store)."""
    import uvicorn

    from .app import create_app

    try:
        settings = Settings.load({"host": host, "port": port, "data_dir": data_dir})
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"warning: open mode (no API keys) on a non-loopback address {settings.host}: "
                    "anyone who can reach it can read and write everything", fg="red", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                loop="auto", http="auto", access_log=False, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    sys.exit(main())
