"""A Stigmer server process with job kinds registered, for tests/e2e/test_jobs_restart.py.

No route submits jobs yet (the memory engine will), so this script is the front door: it builds the real
app (`create_app`), serves it on uvicorn, registers its kinds through `svc.jobs.register` and submits the
jobs named on the command line through `svc.jobs.submit`. Every handler run appends
`<kind> <job id> <attempt> <pid>` to the record file before doing its work.

    python job_server.py PORT RECORD_FILE [--register-late] [KIND:PAYLOAD ...]   (PORT 0: any free one)

Settings come from STIGMER_* variables (data dir or database URL, job lease). A payload `hang` makes the
first attempt of its job wait for ever, so a kill lands while it runs.
"""

from __future__ import annotations

import asyncio
import os
import sys

import uvicorn

from stigmer.app import create_app
from stigmer.config import Settings


def record(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


async def main(port: int, record_file: str, args: list[str]) -> None:
    late = "--register-late" in args
    wanted = [a.split(":", 1) for a in args if a != "--register-late"]
    app = create_app(Settings.load())
    jobs = app.state.services.jobs

    def handler(kind: str):
        async def run(job):
            record(record_file, f"{kind} {job.id} {job.attempts} {os.getpid()}")
            if job.payload == "hang" and job.attempts == 1:
                await asyncio.Event().wait()
            return {"pid": os.getpid(), "payload": job.payload}
        return run

    def register() -> None:
        jobs.register("record", handler("record"))
        jobs.register("compile", handler("compile"), on_interrupt="fail")
        if late:
            jobs.register("later", handler("later"))

    if not late:
        register()  # before start-up: the lifespan starts the worker
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    if late:
        register()  # after start-up: the first registration starts the worker
    for kind, payload in wanted:
        job = await jobs.submit("default", kind, payload)
        record(record_file, f"submitted {kind} {job.id} {payload}")
    record(record_file, f"ready {os.getpid()}")
    await serving


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:]))
