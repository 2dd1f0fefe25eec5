"""End-to-end fixtures: the real `stigmer serve` process on a free port with a temporary data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from local_http import free_port
from pg_support import ON_POSTGRES, database_for, new_database, postgres_url

START_TIMEOUT = 20.0


def pytest_terminal_summary(terminalreporter):
    """Say which documentation examples are not run, and why (test_doc_examples.py skips them)."""
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if "not-run: " in reason:
            terminalreporter.write_line("example " + reason[reason.index("not-run: "):])


class ServerProcess:
    """One server: `start()` (waits for /healthz), `stop()` (SIGTERM), `kill()` (SIGKILL), `restart()`."""

    def __init__(self, data_dir: Path, port: int | None = None, args: tuple[str, ...] = (), **settings: object):
        self.data_dir = data_dir
        if ON_POSTGRES:  # the same data directory stands for the same database
            settings.setdefault("database_url", database_for(str(data_dir)))
        self.args = args  # extra `serve` options
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STIGMER_LOG_LEVEL": "warning",
                    **{"STIGMER_" + k.upper(): str(v) for k, v in settings.items()}}
        self.env.pop("STIGMER_URL", None)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "ServerProcess":
        assert self.proc is None, "already running"
        log = open(self.data_dir.parent / f"server-{self.port}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stigmer.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become healthy: {self.log()}")

    def log(self) -> str:
        return "".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.data_dir.parent.glob("server-*.log")))

    def _signal(self, sig: int, wait: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM); open SSE streams end at once and in-flight requests finish."""
        self._signal(signal.SIGTERM, 15)

    def kill(self) -> None:
        """`kill -9`: no shutdown code runs at all."""
        self._signal(signal.SIGKILL, 5)

    def restart(self, graceful: bool = True) -> None:
        self.stop() if graceful else self.kill()
        self.start()


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
