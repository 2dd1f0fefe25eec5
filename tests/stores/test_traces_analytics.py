"""Traces and analytics on both stores: the engines over a real SQLite file and a real PostgreSQL, with times
set through the store clock."""

from __future__ import annotations

import datetime
from decimal import Decimal

import msgspec
import pytest

from stigmer.engine.analytics import Analytics, Point, TagFigures
from stigmer.engine.conversations import Conversations, Message, MessageInput as M, append_in
from stigmer.engine.errors import Conflict, InvalidArgument, NotFound
from stigmer.engine.ids import new_id
from stigmer.engine.traces import Traces

T = "t1"
MAX = 2**53 - 1


@pytest.fixture
def convs(store):
    return Conversations(store)


@pytest.fixture
def traces(store, convs):
    return Traces(store, convs)


@pytest.fixture
def analytics(store):
    return Analytics(store)


def obs(name: str, kind: str = "span", **members) -> M:
    return M(members.pop("role", "assistant"), name, observation_type=kind, **members)


def at(*parts) -> float:
    """Seconds of a UTC time: at(2026, 1, 1, 0, 0, 0, 999000)."""
    return datetime.datetime(*parts, tzinfo=datetime.timezone.utc).timestamp()


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def shape(roots) -> list:
    """The tree as nested (content, [children]) pairs."""
    return [(o.message.content, shape(o.children)) for o in roots]


# traces


async def test_ingest_resolves_batch_references_and_keeps_other_parents_verbatim(traces, convs, clock):
    batch = [obs("root", "agent", parent_message_id="$0"), obs("gen", "generation", parent_message_id="$1",
                                                               input_tokens=3, output_tokens=4, token_count=7),
             obs("tool", "tool", parent_message_id="$2", cost_microdollars=9), obs("ext", parent_message_id="ext-9"),
             obs("beyond", parent_message_id="$8"), obs("zero-led", parent_message_id="$01"),
             obs("event", "event", role="tool", parent_message_id="$5")]
    c = await traces.ingest(T, external_id="run-1", title="Run", metadata={"b": 1, "a": 2}, observations=batch)
    ids = [m.id for m in c.messages]
    assert [m.parent_message_id for m in c.messages] == ["$0", ids[0], ids[1], "ext-9", "$8", "$01", ids[4]]
    assert [m.role for m in c.messages] == ["assistant"] * 6 + ["tool"]
    assert (c.external_id, c.title, list(c.metadata), c.tags) == ("run-1", "Run", ["b", "a"], [])
    assert (c.message_count, c.token_count, c.total_tokens, c.total_cost_microdollars) == (7, 7, 7, 9)
    assert c.created_at == c.updated_at == ms(clock.now())
    assert await convs.get(T, c.id) == c  # stored as it was answered, with every message


async def test_ingest_refuses_before_writing_anything(traces, convs):
    with pytest.raises(InvalidArgument) as err:
        await traces.ingest(T, external_id="x", observations=[obs("ok"), M("assistant", "no type")])
    assert err.value.details["field"] == "observations[1].observation_type"
    for bad in ([], [obs(str(i)) for i in range(101)], "not a list"):
        with pytest.raises(InvalidArgument):
            await traces.ingest(T, external_id="x", observations=bad)
    with pytest.raises(InvalidArgument):
        await traces.ingest(T, external_id="x", observations=[obs("x", "nope")])
    assert (await convs.list(T))[0] == [] and await convs.by_external_id(T, "x") is None
    assert len((await traces.ingest(T, observations=[obs(str(i)) for i in range(100)])).messages) == 100


async def test_a_duplicate_external_id_is_a_conflict_and_leaves_one_trace(traces, convs):
    first = await convs.create(T, external_id="dup", title="plain")
    with pytest.raises(Conflict, match="A conversation with this external_id already exists"):
        await traces.ingest(T, external_id="dup", observations=[obs("a")])
    rows, _ = await convs.list(T)
    assert [r.id for r in rows] == [first.id]
    assert (await traces.ingest("t2", external_id="dup", observations=[obs("a")])).external_id == "dup"


async def test_tree_roots_by_start_time_children_in_message_order(traces, convs, clock):
    now = ms(clock.now())
    c = await traces.ingest(T, observations=[
        obs("r1", start_time=now + 5), obs("r2"), obs("r3", start_time=now - 10), obs("r4", start_time=now),
        obs("c1-of-r2", parent_message_id="$2", start_time=1), obs("c2-of-r2", parent_message_id="$2"),
        obs("g-of-c1", parent_message_id="$5"), obs("c-of-r1", parent_message_id="$1", start_time=0)])
    clock.advance(1)
    other = await traces.ingest(T, observations=[obs("elsewhere")])
    await convs.append(T, c.id, [M("user", "late, parent in another conversation",
                                   parent_message_id=other.messages[0].id),
                                 M("user", "late child of r3", parent_message_id=c.messages[2].id)])
    got = await traces.get(T, c.id)
    assert shape(got.observations) == [
        ("r3", [("late child of r3", [])]), ("r2", [("c1-of-r2", [("g-of-c1", [])]), ("c2-of-r2", [])]),
        ("r4", []), ("r1", [("c-of-r1", [])]), ("late, parent in another conversation", [])]
    assert got.conversation.messages == [] and got.conversation.message_count == 10
    assert got.conversation == msgspec.structs.replace(await convs.get(T, c.id, with_messages=False))
    assert got.observations[0].message == (await convs.get(T, c.id)).messages[2]  # whole messages


async def test_cycles_and_self_parents_still_show_every_message_once(traces, convs):
    c = await traces.ingest(T, observations=[
        obs("a", parent_message_id="$3"), obs("b", parent_message_id="$1"), obs("c", parent_message_id="$2"),
        obs("self", parent_message_id="$4"), obs("d", parent_message_id="$3")])
    assert shape((await traces.get(T, c.id)).observations) == [
        ("a", [("b", [("c", [("d", [])])])]), ("self", [])]


async def test_a_chain_5000_deep_is_one_tree(traces, store):
    c = await traces.ingest(T, observations=[obs("0")])
    parent = c.messages[0].id
    for start in range(1, 5000, 1000):  # each message the child of the one before (ids chosen here)
        batch = []
        for i in range(start, min(start + 1000, 5000)):
            batch.append(Message(new_id(), c.id, "assistant", str(i), parent_message_id=parent))
            parent = batch[-1].id
        await store.submit(T, lambda tx, batch=batch: append_in(tx, c.id, batch))
    roots = (await traces.get(T, c.id)).observations
    depth, node = 1, roots[0]
    while node.children:
        assert len(node.children) == 1
        node, depth = node.children[0], depth + 1
    assert len(roots) == 1 and depth == 5000 and node.message.content == "4999"


async def test_get_unknown_and_other_tenants_is_not_found_and_plain_conversations_are_readable(traces, convs):
    c = await traces.ingest(T, observations=[obs("a")])
    for tenant, ident in (("t2", c.id), (T, "nope"), (T, ""), (T, "\x00"), (T, "x" * 300)):
        with pytest.raises(NotFound, match="Trace not found"):
            await traces.get(tenant, ident)
    plain = await convs.create(T, messages=[M("user", "hi"), M("assistant", "hello")])
    got = await traces.get(T, plain.id)
    assert shape(got.observations) == [("hi", []), ("hello", [])]
    empty = await convs.create(T)
    assert (await traces.get(T, empty.id)).observations == []


async def test_the_list_holds_conversations_with_an_observation_in_exact_pages(traces, convs, clock):
    made = []
    for i in range(14):
        clock.advance(0.001 * (i % 3 == 0))  # some share updated_at: ids break the tie
        if i % 2:
            made.append(await traces.ingest(T, observations=[obs(str(i))]))
        else:
            await convs.create(T, messages=[M("user", str(i))])
    await convs.create(T)
    await traces.ingest("t2", observations=[obs("other tenant")])
    late = await convs.create(T, messages=[M("user", "plain at first")])
    clock.advance(1)
    await convs.append(T, late.id, [M("assistant", "now traced", observation_type="event")])
    made.append(await convs.get(T, late.id, with_messages=False))
    by_key = sorted(made, key=lambda c: (c.updated_at, c.id))
    for order, want in (("asc", by_key), ("desc", by_key[::-1])):
        seen, cursor = [], None
        while True:
            rows, cursor = await traces.list(T, limit=3, cursor=cursor, order=order)
            assert len(rows) == 3 or cursor is None
            seen.extend(rows)
            if cursor is None:
                break
        assert [c.id for c in seen] == [c.id for c in want]
    rows, cursor = await traces.list(T, limit=8)
    assert len(rows) == 8 and cursor is None
    assert [c.id for c in (await traces.list("t3"))[0]] == []
    with pytest.raises(InvalidArgument):
        await traces.list(T, order="up")


# analytics


@pytest.fixture
async def dataset(convs, clock):
    """Conversations at chosen UTC times (2026-01-01 is a Thursday: its first Monday is the 5th).
    Returns the created_at of each, by name."""
    plan = [("A", at(2025, 12, 31, 23, 59, 59, 999000), ["a"], [2, 8]),
            ("B", at(2026, 1, 1), ["a", "b"], [5]),
            ("C", at(2026, 1, 4, 23, 59, 59, 999000), ["b"], [0]),
            ("D", at(2026, 1, 5), ["a", "b", "c"], [7]),
            ("E", at(2026, 2, 10, 12), [], [])]
    made = {}
    for name, when, tags, tokens in plan:
        clock.set(when)
        c = await convs.create(T, tags=tags, messages=[M("user", name, token_count=t) for t in tokens])
        made[name] = c.created_at
        await convs.create("t2", tags=tags, messages=[M("user", "other tenant", token_count=1000)] * 3)
    return made


async def test_summary_inclusive_ends_and_half_up_averages(analytics, dataset):
    s = await analytics.summary(T, start=dataset["A"], end=dataset["D"])
    # A, B, C, D: 5 messages, 22 tokens over 4 conversations; 5 / 4 = 1.25 rounds half-up (round() says 1.2)
    assert (s.total_conversations, s.total_messages, s.total_tokens) == (4, 5, 22)
    assert (s.avg_messages_per_conversation, s.avg_tokens_per_conversation) == (Decimal("1.3"), Decimal("5.5"))
    assert (s.start, s.end) == (dataset["A"], dataset["D"])
    s = await analytics.summary(T, start=dataset["A"] + 1, end=dataset["D"] - 1)
    assert (s.total_conversations, s.total_messages, s.total_tokens) == (2, 2, 5)
    assert (s.avg_messages_per_conversation, s.avg_tokens_per_conversation) == (Decimal(1), Decimal("2.5"))
    s = await analytics.summary(T, start=dataset["E"] + 1, end=dataset["E"] + 10**9)
    assert (s.total_conversations, s.total_messages, s.avg_messages_per_conversation) == (0, 0, Decimal(0))


async def test_the_default_period_is_the_last_30_days(analytics, dataset, clock):
    clock.set(at(2026, 2, 4))  # C's end of day is within 31 days; B is not
    s = await analytics.summary(T)
    assert (s.start, s.end) == (ms(at(2026, 1, 5)), ms(at(2026, 2, 4)))
    assert s.total_conversations == 1  # D only: E comes later, C one millisecond too early
    assert (await analytics.summary(T, end=dataset["D"])).start == dataset["D"] - 30 * 86_400_000
    assert (await analytics.summary(T, start=dataset["D"])).end == ms(at(2026, 2, 4))


async def test_every_given_tag_is_required(analytics, dataset):
    everything = dict(start=0, end=dataset["E"])
    for tags, want in ((["a"], 3), (["a", "b"], 2), (["b", "a", "b"], 2), (["a", "b", "c"], 1), (["c", "x"], 0),
                       (["a", "bad tag"], 0), ([""], 0), ([], 5)):
        s = await analytics.summary(T, tags=tags, **everything)
        assert s.total_conversations == want, tags
    s = await analytics.summary(T, tags=["a", "b"], **everything)
    assert (s.total_messages, s.total_tokens) == (2, 12)
    series = await analytics.timeseries(T, tags=["b", "c"], **everything)
    assert series.data == [Point("2026-01-05", 1)]


@pytest.mark.parametrize(("metric", "granularity", "want"), [
    ("conversations", "day", [("2025-12-31", 1), ("2026-01-01", 1), ("2026-01-04", 1), ("2026-01-05", 1),
                              ("2026-02-10", 1)]),
    ("conversations", "week", [("2025-W52", 1), ("2026-W00", 2), ("2026-W01", 1), ("2026-W06", 1)]),
    ("conversations", "month", [("2025-12", 1), ("2026-01", 3), ("2026-02", 1)]),
    ("messages", "week", [("2025-W52", 2), ("2026-W00", 2), ("2026-W01", 1), ("2026-W06", 0)]),
    ("tokens", "day", [("2025-12-31", 10), ("2026-01-01", 5), ("2026-01-04", 0), ("2026-01-05", 7),
                       ("2026-02-10", 0)]),
])
async def test_timeseries_buckets_in_utc(analytics, dataset, metric, granularity, want):
    s = await analytics.timeseries(T, metric=metric, granularity=granularity, start=0, end=dataset["E"])
    assert (s.metric, s.granularity, s.start, s.end) == (metric, granularity, 0, dataset["E"])
    assert s.data == [Point(b, v) for b, v in want]


async def test_timeseries_refuses_unknown_metrics_and_granularities(analytics):
    with pytest.raises(InvalidArgument):
        await analytics.timeseries(T, metric="cost")
    with pytest.raises(InvalidArgument):
        await analytics.timeseries(T, granularity="year")
    with pytest.raises(InvalidArgument):
        await analytics.summary(T, start=-1)
    with pytest.raises(InvalidArgument):
        await analytics.summary(T, end=2**53)


async def test_tags_by_conversation_count_then_tag(analytics, dataset):
    t = await analytics.tags(T, start=0, end=dataset["E"])
    assert t.data == [TagFigures("a", 3, 4, 22), TagFigures("b", 3, 3, 12), TagFigures("c", 1, 1, 7)]
    assert [f.tag for f in (await analytics.tags(T, start=0, end=dataset["E"], limit=2)).data] == ["a", "b"]
    t = await analytics.tags(T, start=dataset["B"], end=dataset["C"])
    assert t.data == [TagFigures("b", 2, 2, 5), TagFigures("a", 1, 1, 5)]
    assert (await analytics.tags("t3", start=0, end=dataset["E"])).data == []
    for bad in (0, 201, "5"):
        with pytest.raises(InvalidArgument):
            await analytics.tags(T, limit=bad)


async def test_another_tenant_never_counts(analytics, dataset):
    s = await analytics.summary("t2", start=0, end=dataset["E"])
    assert (s.total_conversations, s.total_messages, s.total_tokens) == (5, 15, 15000)
    assert (await analytics.summary("t3", start=0, end=dataset["E"])).total_conversations == 0
    assert [f.conversation_count for f in (await analytics.tags("t2", start=0, end=dataset["E"])).data] == [3, 3, 1]


async def test_sums_beyond_64_bits_are_exact(analytics, convs, clock):
    for _ in range(3):  # each conversation's token_count is just below 2^63; their sum is not
        await convs.create(T, tags=["big"], messages=[M("user", "x", token_count=MAX)] * 1000)
    s = await analytics.summary(T, tags=["big"])
    assert s.total_tokens == 3 * 1000 * MAX > 2**63
    assert s.avg_tokens_per_conversation == Decimal(1000 * MAX)
    assert (await analytics.tags(T)).data == [TagFigures("big", 3, 3000, 3 * 1000 * MAX)]
    assert (await analytics.timeseries(T, metric="tokens")).data[0].value == 3 * 1000 * MAX
