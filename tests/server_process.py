"""The real `stigmer serve` process on a free port with a temporary data dir, for end-to-end tests and the
reliability harness (tests/e2e/conftest.py builds its fixtures on it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from local_http import free_port
from pg_support import ON_POSTGRES, database_for

__all__ = ["ServerProcess", "free_port"]

START_TIMEOUT = 20.0


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
        self.env.pop("STIGMER_ARTIFACTS", None)  # the tests' screenshot folder, not a server setting
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
