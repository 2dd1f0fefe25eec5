"""Fixtures of the console's browser tests (tests/console_support.py): one server and one browser per module."""

from __future__ import annotations

import pytest

from console_support import Console, start


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    started = start(tmp_path_factory.mktemp("console"))
    if isinstance(started, str):
        print(f"skipping the console browser tests: {started}")
        pytest.skip(started)
    server, browser = started
    c = Console(server, browser)
    yield c
    c.close()
    browser.close()
    server.kill()
