"""The console's listing of semantic sessions (GET /v1/semantic-sessions, engine/sessions/overview.py) on both
stores: newest first, paged by (created_at, id), one tenant's sessions only, and a drift point per stored turn."""

from __future__ import annotations

import pytest

from stigmer.engine.errors import NotFound
from stigmer.engine.sessions import Sessions
from stigmer.support.embeddings import HashEmbedder

T = "t1"


@pytest.fixture
def sessions(store):
    return Sessions(store, HashEmbedder(), store.clock)


async def test_pages_are_newest_first_and_hold_only_the_tenants_sessions(sessions, clock):
    for sid in ("a", "b", "c", "d", "e"):
        await sessions.create(T, sid)
        clock.advance(1)
    await sessions.create("t2", "other")
    await sessions.create(T, "c1", kind="cluster")
    first, nxt = await sessions.page(T, limit=4)
    assert [s.session_id for s in first] == ["e", "d", "c", "b"]
    second, last = await sessions.page(T, limit=4, before=nxt)
    assert [s.session_id for s in second] == ["a"] and last is None
    assert [s.session_id for s in (await sessions.page(T, kind="cluster"))[0]] == ["c1"]
    assert (await sessions.page("nobody"))[0] == []
    assert first[0].turns == 0 and first[0].drift is None and first[0].phase == "initialization"


async def test_ids_break_a_tie_of_creation_times_across_pages(sessions):
    for sid in ("x1", "x2", "x3"):
        await sessions.create(T, sid)  # the manual clock stands still: one created_at
    seen, before = [], None
    while True:
        page, before = await sessions.page(T, limit=1, before=before)
        seen += [s.session_id for s in page]
        if before is None:
            break
    assert seen == ["x3", "x2", "x1"]


async def test_the_drift_series_has_a_point_per_stored_turn(sessions):
    texts = ["the cat sat on the mat", "the cat sat on the red mat", "quarterly tax filing deadlines in spain"]
    sid = None
    for t in texts:
        sid = (await sessions.run(T, f"what about {t}?", session_id=sid, response=t))["session_id"]
    d = await sessions.detail(T, sid)
    assert [p.turn for p in d.series] == [1, 2, 3] and d.summary.turns == 3
    assert all(0 <= p.drift <= 1 and p.drift == pytest.approx((1 - p.similarity) / 2) for p in d.series)
    assert d.series[2].drift > d.series[1].drift  # the off-topic turn drifts further than the near repeat
    assert d.summary.drift == d.series[-1].drift and d.summary.phase == d.series[-1].phase
    with pytest.raises(NotFound):
        await sessions.detail("t2", sid)
