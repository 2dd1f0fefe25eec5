"""Subjects (Statewave §5.10, §5.11): the distinct subject ids among the episodes and memories in a request's
scope, and the erasure of one subject.

A subject delete is one mutation: the subject's episodes and memories in scope, what other capabilities
keep about it (each registers a *cascade*: resolutions and the health-state record, compile jobs), its
webhook events, and then the `subject.deleted` event, all commit together (Decision 3, Decision 9).
"""

from __future__ import annotations

from typing import Callable

import msgspec

# A cascade deletes what one capability keeps about (tenant_id scope, subject_id) inside the delete's
# mutation and returns its counts by response field, e.g. {"resolutions_deleted": 1}.
Cascade = Callable[[object, "str | None", str], dict[str, int]]
COUNTS = ("episodes_deleted", "memories_deleted", "resolutions_deleted", "compile_jobs_deleted",
          "webhook_events_deleted")


class SubjectCount(msgspec.Struct, frozen=True):
    subject_id: str
    episode_count: int
    memory_count: int  # memories of every status


class SubjectPage(msgspec.Struct, frozen=True):
    subjects: list[SubjectCount]
    total: int  # every subject in scope, not the page (Decision 28)


class SubjectDeleted(msgspec.Struct, frozen=True):
    subject_id: str
    episodes_deleted: int
    memories_deleted: int
    resolutions_deleted: int
    compile_jobs_deleted: int
    webhook_events_deleted: int

    def data(self) -> dict:
        """The §5.11 response, which is also the `subject.deleted` event's data."""
        return {"subject_id": self.subject_id, **{k: getattr(self, k) for k in COUNTS}}


def delete_in(tx, tenant_id: str | None, subject_id: str, cascades: list[Cascade], webhooks) -> SubjectDeleted:
    """The subject delete as one mutation: idempotent (again, every count is 0); never a not-found."""
    episodes, memories = tx.memory.delete_subject(tenant_id, subject_id)
    counts = dict.fromkeys(COUNTS, 0) | {"episodes_deleted": episodes, "memories_deleted": memories}
    for cascade in cascades:
        for name, n in cascade(tx, tenant_id, subject_id).items():
            counts[name] += n
    if webhooks is not None:
        counts["webhook_events_deleted"] += webhooks.delete_subject_in(tx, subject_id, tenant_id)
    deleted = SubjectDeleted(subject_id, *(counts[k] for k in COUNTS))
    if webhooks is not None:  # after the delete of the subject's events, so this one stays
        webhooks.enqueue_in(tx, "subject.deleted", deleted.data(), tenant_id=tenant_id)
    return deleted
