"""Job rows as both stores hold them: the columns and the conversions (payload and result as JSON text)."""

from __future__ import annotations

from ..engine import values
from ..engine.jobs import Job

COLUMNS = ("tenant, id, kind, payload, status, result, error, attempts, max_attempts, created_at, started_at,"
           " completed_at, claimed_until, claim")
# Spelled as the partial index `jobs_unfinished` says it, so SQLite uses that index for the two below.
UNFINISHED = "status IN ('pending', 'running')"
# What makes a job due: of a kind handled here with attempts left, and never claimed, or claimed by a worker
# whose lease ran out when its kind is run again after that.
DUE = (UNFINISHED + " AND kind IN {kinds} AND attempts < max_attempts"
       " AND (status = 'pending' OR (status = 'running' AND claimed_until <= {now} AND kind IN {retrying}))")
# A running job whose lease ran out that must not run again: no attempts left, or a kind that fails then.
ABANDONED = (UNFINISHED + " AND status = 'running' AND claimed_until <= {now}"
             " AND (attempts >= max_attempts OR kind IN {kinds})")
PENDING_COUNT = f"SELECT count(*) FROM jobs WHERE {UNFINISHED} AND status = 'pending'"  # the queue depth, all tenants
LEASE_RAN_OUT = "'its lease ran out ' || attempts || ' times (no attempts left)'"  # the error, in SQL


def job_row(j: Job) -> tuple:
    return (j.tenant, j.id, j.kind, values.encode(j.payload).decode(), j.status,
            None if j.result is None else values.encode(j.result).decode(), j.error, j.attempts, j.max_attempts,
            j.created_at, j.started_at, j.completed_at, j.claimed_until, j.claim)


def job_of(row: tuple | list) -> Job:
    tenant, id_, kind, payload, status, result, *rest = row
    return Job(tenant, id_, kind, values.decode(payload), status, None if result is None else values.decode(result),
               *rest)

