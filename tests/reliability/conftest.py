"""Reliability harness: prints one table of figures at the end of the run (see docs/reliability.md)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import pytest

import rel_support


def pytest_collection_modifyitems(config, items):
    """The full run outlasts the suite's 120 s per-test timeout."""
    for item in items:
        if "reliability" in str(item.path):
            item.add_marker(pytest.mark.timeout(rel_support.size(300, 3600)))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not rel_support.FIGURES and not rel_support.FINDINGS:
        return
    size = "full size" if rel_support.FULL else "reduced size (full: make reliability)"
    table = Table(title="reliability figures", caption=size)
    table.add_column("figure")
    table.add_column("count", justify="right")
    for name, n in sorted(rel_support.FIGURES.items()):
        table.add_row(name, str(n))
    console = Console(file=terminalreporter._tw._file if hasattr(terminalreporter._tw, "_file") else None,
                      width=120, force_terminal=False)
    console.print(table)
    for line in rel_support.FINDINGS:
        console.print(f"- {line}", markup=False, highlight=False)
