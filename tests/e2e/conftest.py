"""End-to-end fixtures: the real `stigmer serve` process on a free port with a temporary data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pg_support import new_database, postgres_url
from server_process import ServerProcess

@pytest.fixture
def server(tmp_path):
    """A server for this test alone (tests that stop, kill or restart it)."""
    s = ServerProcess(tmp_path / "data").start()
    yield s
    s.kill()


@pytest.fixture
def make_server(tmp_path):
    """Build (not start) servers with extra `serve` options or settings; all are killed at the end."""
    made: list[ServerProcess] = []

    def make(args: tuple[str, ...] = (), **settings: object) -> ServerProcess:
        s = ServerProcess(tmp_path / f"data{len(made)}", args=args, **settings)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server per test module; tests use their own namespaces."""
    s = ServerProcess(tmp_path_factory.mktemp("stigmer") / "data").start()
    yield s
    s.kill()


@pytest.fixture
def ns(request) -> str:
    """A namespace unique to the test."""
    return "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[:200]


@pytest.fixture
def start_server(tmp_path):
    """Start servers with given settings (`start_server(data_dir=..., **settings)`); all are killed at the end."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, **settings: object) -> ServerProcess:
        s = ServerProcess(data_dir or tmp_path / f"data{len(started)}", **settings).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Three servers on one PostgreSQL database of their own (skips, or fails in CI, without PostgreSQL)."""
    postgres_url()
    base = tmp_path_factory.mktemp("replicas")
    url = new_database(f"stigmer_{base.name}_{os.getpid()}".lower())
    started = [ServerProcess(base / f"r{i}", database_url=url) for i in range(3)]
    for s in started:
        s.data_dir.mkdir()
        s.start()
    yield started
    for s in started:
        s.kill()
