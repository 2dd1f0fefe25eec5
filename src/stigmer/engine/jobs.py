"""The durable job queue (docs/jobs.md): jobs stored with the tenant's data, run by a worker in the server.

Rules:
- a job is a row of one tenant: `id` (8 lower-case hex, unique per tenant, drawn again on collision),
  `kind`, JSON `payload`, `status` pending → running → completed | failed, JSON `result` or `error`,
  `attempts` / `max_attempts` and created_at / started_at / completed_at (store-clock seconds);
- `submit_in(tx, …)` enqueues inside another mutation, so a job exists iff that change committed;
- a worker claims due jobs atomically (status `running`, a claim token and `claimed_until` = now + lease),
  renews the lease while the handler runs, and records `completed` with the handler's result or `failed`
  with `ExceptionName: message`, only while it still holds the claim: a completion is recorded once;
- a running job whose lease expired (its worker crashed or was stopped) is claimed again, up to
  `max_attempts` claims; then it is failed. A kind registered with `on_interrupt="fail"` is failed at
  once instead, with `interrupted by server restart` (the Statewave contract, §6.6);
- so a handler runs at least once per job and may run again after a crash: it must be idempotent per job;
- finished jobs older than the retention are deleted by the worker (0: kept for ever).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from typing import Any, Awaitable, Callable

from ..clock import Clock
from . import values
from .errors import InvalidArgument, StorageFull, StorageUnavailable

log = logging.getLogger("stigmer.jobs")

STATUSES = ("pending", "running", "completed", "failed")
INTERRUPTED = "interrupted by server restart"
POLL_SECONDS = 1.0  # the longest a due job waits for a worker that was not woken
PURGE_SECONDS = 3600.0  # how often finished jobs past the retention are deleted
MAX_ID_DRAWS = 100


@dataclasses.dataclass
class Job:
    tenant: str
    id: str
    kind: str
    payload: Any
    status: str = "pending"
    result: Any = None
    error: str | None = None
    attempts: int = 0
    max_attempts: int = 3
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    claimed_until: float | None = None
    claim: str | None = None  # the token of the claim that runs it now


Handler = Callable[[Job], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Kind:
    handler: Handler
    on_interrupt: str  # "retry": a crashed run is claimed again; "fail": it fails with INTERRUPTED


def new_job_id() -> str:
    return secrets.token_hex(4)


class Jobs:
    """The queue over `store.jobs` / `tx.jobs`, and the worker (`run`)."""

    def __init__(self, store, clock: Clock, *, lease_seconds: float = 30.0, max_attempts: int = 3,
                 retention_hours: float = 168.0, concurrency: int = 4):
        self.store = store
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.retention_hours = retention_hours
        self.concurrency = concurrency
        self.kinds: dict[str, Kind] = {}
        self.on_register: Callable[[], None] | None = None  # the app starts its worker on the first kind
        self._wake: asyncio.Event | None = None

    def register(self, kind: str, handler: Handler, *, on_interrupt: str = "retry") -> None:
        if on_interrupt not in ("retry", "fail"):
            raise ValueError("on_interrupt is 'retry' or 'fail'")
        self.kinds[kind] = Kind(handler, on_interrupt)
        if self.on_register is not None:
            self.on_register()
        self.wake()  # a running worker claims the new kind's jobs now

    # enqueue

    def submit_in(self, tx, kind: str, payload: Any, *, max_attempts: int | None = None) -> Job:
        """Enqueue inside the mutation `tx` (it commits with the mutation's other writes, or not at all)."""
        attempts = self.max_attempts if max_attempts is None else max_attempts
        if not kind or attempts < 1:
            raise InvalidArgument("a job needs a kind and max_attempts >= 1")
        try:
            values.encode(payload)  # not JSON: fail the mutation now, not the worker later
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgument(f"a job's payload must be JSON: {exc}") from None
        for _ in range(MAX_ID_DRAWS):
            job_id = new_job_id()
            if not tx.jobs.exists(job_id):
                break
        else:
            raise InvalidArgument("no free job id: too many jobs are kept for this tenant")
        job = Job(tx.tenant, job_id, kind, payload, max_attempts=attempts, created_at=tx.now)
        tx.jobs.insert(job)
        tx.after_commit(self.wake)  # this process's worker claims it once it is durable, on both stores
        return job

    async def submit(self, tenant: str, kind: str, payload: Any, *, max_attempts: int | None = None) -> Job:
        return await self.store.submit(tenant, lambda tx: self.submit_in(tx, kind, payload, max_attempts=max_attempts))

    # reads

    async def get(self, tenant: str, job_id: str) -> Job | None:
        return await self.store.jobs.get(tenant, job_id)

    async def list(self, tenant: str, *, status: str | None = None, kind: str | None = None, limit: int = 20,
                   offset: int = 0) -> tuple[list[Job], int]:
        """The tenant's jobs matching the filters, newest first, and how many match in all."""
        if status is not None and status not in STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidArgument("limit must be 1-1000 and offset >= 0")
        return await self.store.jobs.list(tenant, status, kind, limit, offset)

    async def running_longer_than(self, seconds: float) -> int:
        """How many jobs (every tenant, every kind) have been running for more than `seconds` (readiness)."""
        return await self.store.jobs.count_running(self.clock.now() - seconds)

    async def queue_depth(self) -> int:
        """How many jobs (every tenant, every kind) wait to run."""
        return await self.store.jobs.count_pending()

    # the worker

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self, handlers: dict[str, Handler] | None = None) -> None:
        """Claim and run due jobs of the registered kinds (and of `handlers`, for this run) until cancelled.
        Cancelled, it cancels the handlers it runs and leaves their jobs claimed: their leases expire and
        they are retried."""
        extra = {kind: Kind(handler, "retry") for kind, handler in (handlers or {}).items()}
        self._wake = asyncio.Event()
        running: set[asyncio.Task] = set()
        purged_at = float("-inf")
        skipping = False
        try:
            while True:
                self._wake.clear()
                kinds = {**self.kinds, **extra}  # a kind registered meanwhile counts from now
                try:
                    now = self.clock.now()
                    if self.retention_hours and now - purged_at >= PURGE_SECONDS:
                        await self.store.jobs.purge(now - self.retention_hours * 3600)
                        purged_at = now
                    failing = [k for k, v in kinds.items() if v.on_interrupt == "fail"]
                    await self.store.jobs.abandon(now, failing, INTERRUPTED)
                    free = self.concurrency - len(running)
                    if free > 0 and kinds:
                        retrying = [k for k in kinds if k not in failing]
                        claimed = await self.store.jobs.claim(list(kinds), retrying, now, now + self.lease_seconds,
                                                              secrets.token_hex(8), free)
                        for job in claimed:
                            task = asyncio.create_task(self._run_one(job, kinds[job.kind].handler))
                            running.add(task)
                            task.add_done_callback(self._finished(running))
                    skipping = False
                except (StorageFull, StorageUnavailable) as exc:
                    if not skipping:
                        log.warning("jobs are not claimed until storage recovers: %s", exc.message)
                    skipping = True
                except Exception:
                    log.exception("job claim failed")
                try:  # not wait_for: on 3.11 it can swallow a cancel that lands as the wake-up does
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            self._wake = None
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, running: set[asyncio.Task]) -> Callable[[asyncio.Task], None]:
        def done(task: asyncio.Task) -> None:
            running.discard(task)
            self.wake()  # a slot is free
        return done

    async def _run_one(self, job: Job, handler: Handler) -> None:
        work = asyncio.create_task(handler(job))
        try:
            while not (await asyncio.wait({work}, timeout=self.lease_seconds / 3))[0]:
                if not await self._renew(job):
                    work.cancel()  # another worker holds it now: this run's outcome would not be recorded
                    log.warning("job %s/%s lost its claim while running", job.tenant, job.id)
                    return
        except asyncio.CancelledError:
            work.cancel()  # shutdown: the job stays claimed until its lease expires, then it is retried
            raise
        status, result, error = "completed", None, None
        try:
            result = values.encode(work.result()).decode()
        except asyncio.CancelledError:
            status, error = "failed", "CancelledError: the handler was cancelled"
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        try:
            kept = await self.store.jobs.finish(job.tenant, job.id, job.claim, status, result, error, self.clock.now())
        except (StorageFull, StorageUnavailable) as exc:  # its lease expires and it runs again
            log.warning("job %s/%s ran but its outcome was not stored: %s", job.tenant, job.id, exc.message)
            return
        if not kept:
            log.warning("job %s/%s finished after losing its claim; its outcome was dropped", job.tenant, job.id)

    async def _renew(self, job: Job) -> bool:
        try:
            return await self.store.jobs.renew(job.tenant, job.id, job.claim, self.clock.now() + self.lease_seconds)
        except (StorageFull, StorageUnavailable):
            return True  # keep running: should another worker claim it meanwhile, this finish is refused
