"""`stigmer claim create | get | list | verify | runs`: claims backed by evidence (docs/claims.md)."""

from __future__ import annotations

import itertools
import sys

import click

from .cli_kit import Run, console, dump, json_arg, show_fields, when
from .cli_options import client_options

_PAGE = 1000  # the server's largest page


def _items(raw: object, what: str) -> list:
    """An evidence object, or a JSON array of them."""
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, dict) for i in items):
        raise click.BadParameter(f"{what} must be a JSON object or an array of objects")
    return items


def _pages(fetch, limit: int | None, order: str | None, rows: str) -> list:
    """Every row of a paged list, or the first `limit`."""
    def gen():
        cursor = None
        while True:
            page = fetch(limit=min(limit, _PAGE) if limit else _PAGE, cursor=cursor, order=order)
            yield from getattr(page, rows)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    return list(itertools.islice(gen(), limit))


def _show_claim(c, as_json: bool) -> None:
    if as_json:
        click.echo(dump(c))
        return
    rows = [("id", c.id), ("subject", f"{c.subject_type}/{c.subject_id}"), ("statement", c.statement),
            ("status", c.status), ("created", when(c.created_at)), ("updated", when(c.updated_at))]
    rows += [(f"evidence {i}", f"{e.kind} {e.source}") for i, e in enumerate(c.evidence, 1)]
    show_fields(rows)


def _show_run(run) -> None:
    from rich.text import Text

    out = console()
    out.print(Text(f"{run.status} {run.claim_id} (run {run.id}, {when(run.created_at)})",
                   style="green" if run.status == "verified" else "red"))
    for r in run.results:
        out.print(Text(f"  {'pass' if r.passed else 'FAIL'} {r.kind} {r.source}: {r.message}"))


@click.group()
def claim() -> None:
    """Create, read, list and verify claims backed by evidence."""


@claim.command()
@click.option("--subject-type", required=True, help="What the claim is about, e.g. doc (1-100 characters).")
@click.option("--subject-id", required=True, help="Which one, e.g. q3-report (1-255 characters).")
@click.option("--statement", required=True, help="The claim (1-5000 characters).")
@click.option("--evidence", "evidence", multiple=True, metavar="JSON",
              help="An evidence item, a JSON object with its kind (text_hash, json_value, state_event, key_value);"
                   " repeatable, or a JSON array of items.")
@click.option("--evidence-file", type=click.File("r"), default=None,
              help="Read evidence items (a JSON array or one object) from this file; `-` is stdin.")
@client_options
def create(subject_type: str, subject_id: str, statement: str, evidence: tuple[str, ...], evidence_file,
           url: str, api_key: str | None, as_json: bool) -> None:
    """Create a claim with 1-50 evidence items; it is pending until verified."""
    items = [i for raw in evidence for i in _items(json_arg(raw, "--evidence"), "--evidence")]
    if evidence_file is not None:
        items += _items(json_arg(evidence_file.read(), "--evidence-file"), "--evidence-file")
    if not items:
        raise click.UsageError("give the evidence: --evidence JSON (repeatable) or --evidence-file FILE")
    with Run(url, as_json, api_key) as c:
        _show_claim(c.create_claim(subject_type, subject_id, statement, items), as_json)


@claim.command()
@click.argument("claim_id")
@client_options
def get(claim_id: str, url: str, api_key: str | None, as_json: bool) -> None:
    """Show a claim and its evidence (exit 1 with not_found if there is none)."""
    with Run(url, as_json, api_key) as c:
        _show_claim(c.get_claim(claim_id), as_json)


_ORDER = click.option("--order", type=click.Choice(["desc", "asc"]), default=None, help="By creation [default desc].")


@claim.command("list")
@click.option("--subject-type", default=None, help="Only claims about this type of subject.")
@click.option("--subject-id", default=None, help="Only claims about this subject id.")
@click.option("--limit", type=int, default=None, help="At most this many (default: all).")
@_ORDER
@client_options
def list_(subject_type: str | None, subject_id: str | None, limit: int | None, order: str | None, url: str,
          api_key: str | None, as_json: bool) -> None:
    """List claims (without evidence) newest first; a JSON array with --json."""
    with Run(url, as_json, api_key) as c:
        claims = _pages(lambda **kw: c.list_claims(subject_type=subject_type, subject_id=subject_id, **kw),
                        limit, order, "claims")
    if as_json:
        click.echo(dump(claims))
        return
    from rich.table import Table
    from rich.text import Text

    t = Table()
    t.add_column("id", no_wrap=True)  # copied into `claim verify`
    for name in ("subject", "status", "created", "statement"):
        t.add_column(name)
    for k in claims:
        s = k.statement if len(k.statement) <= 60 else k.statement[:57] + "..."
        t.add_row(k.id, Text(f"{k.subject_type}/{k.subject_id}"), k.status, when(k.created_at), Text(s))
    console().print(t)


@claim.command()
@click.argument("claim_id")
@client_options
def verify(claim_id: str, url: str, api_key: str | None, as_json: bool) -> None:
    """Check every evidence item now and keep the run. Exit 0 when the claim is verified, 1 when it failed (or
    on an error such as not_found: with --json, stdout has the run only when one was made)."""
    with Run(url, as_json, api_key) as c:
        run = c.verify_claim(claim_id)
    if as_json:
        click.echo(dump(run))
    else:
        _show_run(run)
    sys.exit(0 if run.status == "verified" else 1)


@claim.command()
@click.argument("claim_id")
@click.option("--limit", type=int, default=None, help="At most this many (default: all).")
@_ORDER
@client_options
def runs(claim_id: str, limit: int | None, order: str | None, url: str, api_key: str | None, as_json: bool) -> None:
    """List a claim's verification runs, newest first; a JSON array with --json."""
    with Run(url, as_json, api_key) as c:
        found = _pages(lambda **kw: c.claim_runs(claim_id, **kw), limit, order, "runs")
    if as_json:
        click.echo(dump(found))
        return
    from rich.table import Table

    t = Table()
    t.add_column("run", no_wrap=True)
    for name in ("status", "created", "passed"):
        t.add_column(name)
    for r in found:
        t.add_row(r.id, r.status, when(r.created_at), f"{sum(x.passed for x in r.results)}/{len(r.results)}")
    console().print(t)
