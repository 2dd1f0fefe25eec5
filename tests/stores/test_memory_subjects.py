"""The memory engine's timeline, subjects and subject delete on both stores (Statewave §5.9–§5.11, §6.12,
§3.2, Decision 3): windows and totals, code-point order, scope, the delete's cascades and its counts."""

from __future__ import annotations

import pytest

from stigmer.engine.errors import InvalidArgument
from stigmer.engine.jobs import Jobs
from stigmer.engine.memory import EpisodeInput, Memory
from stigmer.engine.memory.compile_jobs import KIND, CompileJobs

T = "t1"


def ep(subject: str, text: str = "I use vim") -> EpisodeInput:
    return EpisodeInput(subject, "chat", "note", {"text": text})


@pytest.fixture
def memory(store):
    return Memory(store)


async def test_timeline_windows_ascending_both_ways(memory, clock):
    for i in range(4):
        await memory.add_episode(T, None, ep("s", f"I use tool {i}"))
        clock.advance(1)
    await memory.add_episodes(T, None, [ep("s", "tie a"), ep("s", "tie b")])  # one created_at: seq breaks the tie
    t = await memory.timeline(T, None, "s", limit=3, offset=0)
    assert [e.payload["text"] for e in t.episodes] == ["I use tool 0", "I use tool 1", "I use tool 2"] and t.episodes_total == 6
    t = await memory.timeline(T, None, "s", limit=3, offset=0, newest_first=True)
    assert [e.payload["text"] for e in t.episodes] == ["I use tool 3", "tie a", "tie b"]
    t = await memory.timeline(T, None, "s", limit=2, offset=1, newest_first=True)
    assert [e.payload["text"] for e in t.episodes] == ["I use tool 3", "tie a"]
    t = await memory.timeline(T, None, "s", limit=10, offset=7)
    assert t.episodes == [] and t.episodes_total == 6
    await memory.compile(T, None, "s")
    t = await memory.timeline(T, None, "s", limit=100)
    assert t.memories_total == 10 and [m.kind for m in t.memories[:2]] == ["episode_summary", "profile_fact"]
    assert [m.status for m in t.memories].count("superseded") > 0  # every status is on the timeline
    with pytest.raises(InvalidArgument):
        await memory.timeline(T, None, "s", limit=0)


async def test_subjects_by_code_point_with_counts_and_scope(memory):
    for subject, tenant_id in [("b", None), ("a", "x"), ("é", "x"), ("Z", None), ("a", None), ("z", "y")]:
        await memory.add_episode(T, tenant_id, ep(subject))
    await memory.add_episode("other-stigmer-tenant", None, ep("q"))
    await memory.compile(T, "x", "a")
    page = await memory.subjects(T, None, limit=50)
    assert [(s.subject_id, s.episode_count, s.memory_count) for s in page.subjects] == [
        ("Z", 1, 0), ("a", 2, 2), ("b", 1, 0), ("z", 1, 0), ("é", 1, 0)]
    assert page.total == 5
    page = await memory.subjects(T, None, limit=2, offset=3)
    assert [s.subject_id for s in page.subjects] == ["z", "é"] and page.total == 5
    scoped = await memory.subjects(T, "x")
    assert [(s.subject_id, s.episode_count, s.memory_count) for s in scoped.subjects] == [("a", 1, 2), ("é", 1, 0)]
    assert scoped.total == 2
    assert (await memory.subjects(T, "nobody")).total == 0


async def test_delete_subject_scope_cascades_and_counts(store, memory, clock):
    jobs = Jobs(store, clock)
    compile_jobs = CompileJobs(memory, jobs)  # registers its cascade: the subject's compile jobs go too
    await memory.add_episodes(T, "x", [ep("s"), ep("s", "I work at Initech")])
    await memory.add_episode(T, "y", ep("s"))
    await memory.add_episode(T, "x", ep("keep"))
    await memory.compile(T, None, "s")
    x_job = await compile_jobs.submit(T, "x", "s")
    y_job = await compile_jobs.submit(T, "y", "s")
    other = await compile_jobs.submit(T, "x", "keep")
    deleted = await memory.delete_subject(T, "x", "s")
    assert deleted.data() == {"subject_id": "s", "episodes_deleted": 2, "memories_deleted": 4,
                              "resolutions_deleted": 0, "compile_jobs_deleted": 1, "webhook_events_deleted": 0}
    assert await compile_jobs.get(T, None, x_job.id) is None
    assert await compile_jobs.get(T, None, y_job.id) is not None and await compile_jobs.get(T, None, other.id)
    left = await memory.timeline(T, None, "s")
    assert [e.tenant_id for e in left.episodes] == ["y"] and len(left.memories) == 2
    # a cascade of another capability adds its counts to the same mutation
    memory.cascades.append(lambda tx, tenant_id, subject_id: {"resolutions_deleted": 3})
    again = await memory.delete_subject(T, None, "s")
    assert (again.episodes_deleted, again.memories_deleted, again.compile_jobs_deleted,
            again.resolutions_deleted) == (1, 2, 1, 3)
    assert (await memory.subjects(T, None)).total == 1
    assert [j.kind for j in (await jobs.list(T))[0]] == [KIND]  # `keep`'s job
