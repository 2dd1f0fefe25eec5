"""Jobs across a `kill -9` of a real server process (docs/jobs.md).

No route submits jobs yet, so the server is job_server.py beside this file: the real app on uvicorn, with
job kinds registered through `svc.jobs.register` and jobs submitted through `svc.jobs.submit`. The first
process is killed with SIGKILL while two jobs run; a second process over the same data finishes what the
first left: the job of a retried kind runs again, the job of a kind that fails on interruption fails,
one that never started runs, and one that finished is not run again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pg_support import ON_POSTGRES, database_for
from stigmer.clock import SystemClock
from stigmer.config import Settings
from stigmer.engine.jobs import INTERRUPTED
from stigmer.store.select import open_store

SCRIPT = Path(__file__).with_name("job_server.py")
DEADLINE = 30.0


class JobServer:
    def __init__(self, data_dir: Path, record: Path):
        self.record = record
        self.env = {**os.environ, "STIGMER_DATA_DIR": str(data_dir), "STIGMER_JOB_LEASE_SECONDS": "1",
                    "STIGMER_LOG_LEVEL": "warning"}
        self.env.pop("STIGMER_URL", None)
        if ON_POSTGRES:
            self.env["STIGMER_DATABASE_URL"] = database_for(str(data_dir))
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> int:
        log = open(self.record.with_suffix(f".log{time.monotonic_ns()}"), "wb")
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), "0", str(self.record), *args],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self.proc.pid

    def wait_for(self, *lines: str) -> list[list[str]]:
        """Block until the record file holds every one of `lines` (prefixes of a line); return it, split."""
        deadline = time.monotonic() + DEADLINE
        while True:
            held = self.record.read_text().splitlines() if self.record.exists() else []
            if all(any(h.startswith(line) for h in held) for line in lines):
                return [h.split() for h in held]
            assert self.proc is not None and self.proc.poll() is None, "the job server exited"
            assert time.monotonic() < deadline, f"waited for {lines}; have {held}"
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(15)
        self.proc = None


def status_now(data_dir: Path, job_id: str) -> str | None:
    """A job's status read from the database while a server holds it (SQLite: a read-only connection)."""
    sql = "SELECT status FROM jobs WHERE tenant = 'default' AND id = {}"
    if ON_POSTGRES:
        import psycopg

        with psycopg.connect(database_for(str(data_dir))) as conn:
            row = conn.execute(sql.format("%s"), (job_id,)).fetchone()
    else:
        conn = sqlite3.connect(f"file:{data_dir / 'stigmer.db'}?mode=ro", uri=True)
        try:
            row = conn.execute(sql.format("?"), (job_id,)).fetchone()
        finally:
            conn.close()
    return row and row[0]


def wait_status(data_dir: Path, job_id: str, status: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while status_now(data_dir, job_id) != status:
        assert time.monotonic() < deadline, f"job {job_id} did not become {status}"
        time.sleep(0.02)


def stored_jobs(data_dir: Path) -> dict:
    async def read() -> dict:
        values = {"data_dir": str(data_dir)}
        if ON_POSTGRES:
            values["database_url"] = database_for(str(data_dir))
        store = open_store(Settings.load(values, environ={}), SystemClock())
        await store.open()
        try:
            page, _ = await store.jobs.list("default", None, None, 100, 0)
        finally:
            await store.close()
        return {j.id: j for j in page}

    return asyncio.run(read())


def test_jobs_survive_a_kill_9(tmp_path):
    data_dir, record = tmp_path / "data", tmp_path / "record.txt"
    server = JobServer(data_dir, record)
    first = server.start("record:hang", "record:once", "compile:hang", "later:after-restart")
    held = server.wait_for("ready", "record ", "compile ")
    ids = {(line[1], line[3]): line[2] for line in held if line[0] == "submitted"}
    hang, once, compile_, later = (ids["record", "hang"], ids["record", "once"], ids["compile", "hang"],
                                   ids["later", "after-restart"])
    server.wait_for(f"record {hang} 1", f"compile {compile_} 1")
    wait_status(data_dir, once, "completed")
    server.signal(signal.SIGKILL)  # two handlers are running; no shutdown code runs

    second = server.start("--register-late")
    server.wait_for(f"record {hang} 2 {second}", f"later {later} 1 {second}")
    wait_status(data_dir, compile_, "failed")  # once its own lease has run out
    server.signal(signal.SIGTERM)

    jobs = stored_jobs(data_dir)
    runs = [line for line in (h.split() for h in record.read_text().splitlines()) if line[0] in ("record", "compile", "later")]
    assert sorted(runs) == sorted([["record", hang, "1", str(first)], ["record", once, "1", str(first)],
                                   ["compile", compile_, "1", str(first)], ["record", hang, "2", str(second)],
                                   ["later", later, "1", str(second)]])
    assert (jobs[hang].status, jobs[hang].attempts, jobs[hang].result) == (
        "completed", 2, {"pid": second, "payload": "hang"})
    assert (jobs[once].status, jobs[once].attempts, jobs[once].result["pid"]) == ("completed", 1, first)
    assert (jobs[compile_].status, jobs[compile_].error, jobs[compile_].attempts) == ("failed", INTERRUPTED, 1)
    assert (jobs[later].status, jobs[later].result) == ("completed", {"pid": second, "payload": "after-restart"})
