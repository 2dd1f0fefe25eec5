"""The real Stigmer app on uvicorn whose async compiles never finish, for tests/e2e/test_statewave_jobs.py.

A compile job's run is the one thing a test cannot hold open from outside on both stores, so this script
registers the `statewave.compile` kind again with a handler that records `running <job id>` to the record
file and then waits for ever: the job is `running` when the test kills the process with SIGKILL. Everything
else (routes, store, queue, lease) is the real server's.

    python statewave_server.py PORT RECORD_FILE      (settings from STIGMER_* variables)
"""

from __future__ import annotations

import asyncio
import os
import sys

import uvicorn

from stigmer.app import create_app
from stigmer.config import Settings
from stigmer.engine.memory.compile_jobs import KIND


def main(port: int, record_file: str) -> None:
    app = create_app(Settings.load())

    async def never_finishes(job) -> None:
        with open(record_file, "a") as f:
            f.write(f"running {job.id} {os.getpid()}\n")
        await asyncio.Event().wait()

    app.state.services.jobs.register(KIND, never_finishes, on_interrupt="fail")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
