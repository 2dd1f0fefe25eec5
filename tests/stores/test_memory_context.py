"""Context assembly on both stores: §6.8 on the spec's golden example (token_estimate 157, 66 with
max_tokens=60, 147 without a session, 6 for an empty subject), its rules one by one, and the engine's
query-driven mode (`Memory.recall`, docs/memory.md) with provenance for every line."""

from __future__ import annotations

import random

import pytest

from stigmer.engine.errors import InvalidArgument
from stigmer.engine.memory import EpisodeInput, Memory, SessionResolution
from stigmer.engine.memory.context import assemble, clean, rel, store_resolutions
from stigmer.engine.memory.resolutions import ResolutionInput
from stigmer.engine.memory.support import Support
from stigmer.engine.memory.recall import line_tokens, text_tokens
from stigmer.support import tokencount
from stigmer.support.embeddings import HashEmbedder

T = "t1"
S = "ravi"
TASK = "Ravi reports a duplicate charge on the invoice"

GOLDEN = """## Task
Ravi reports a duplicate charge on the invoice

## About this user
- I work at Globex
- My name is Ravi Shah

## Recent history
- I work at Globex.
- My name is Ravi Shah.

## Recent interactions
### Current session (cur)
- [user/message] user: The invoice has a duplicate charge again, this is urgent
- [agent/action] Checked the billing ledger for duplicates
- [user/message] ok thanks
### Previous interactions
- [user/message] How do I export reports to CSV?
- [tool/tool_call] (no text content)
- [assistant/message] I refunded the duplicate charge to your card
- [user/message] My invoice shows a duplicate charge for March
"""


def ep(source, type_, payload, session=None, subject=S):
    return EpisodeInput(subject, source, type_, payload, session_id=session)


async def golden_resolutions(tenant, tenant_id, subject_id):
    return [SessionResolution("misc", "open", None), SessionResolution("old", "resolved", "Refunded duplicate charge")]


@pytest.fixture
async def golden(store, clock):
    """The §6.8 golden setup: two compiled episodes (separate compiles), then one batch of seven."""
    memory = Memory(store, resolutions_of=golden_resolutions)
    for text in ("My name is Ravi Shah.", "I work at Globex."):
        await memory.add_episode(T, None, ep("user", "message", {"text": text}))
        clock.advance(1)
        await memory.compile(T, None, S)
        clock.advance(1)
    batch = await memory.add_episodes(T, None, [
        ep("user", "message", {"text": "My invoice shows a duplicate charge for March"}, "old"),
        ep("assistant", "message", {"text": "I refunded the duplicate charge to your card"}, "old"),
        ep("user", "message", {"messages": [{"role": "user",
                                             "content": "The invoice has a duplicate charge again, this is urgent"}]},
           "cur"),
        ep("agent", "action", {"text": "Checked the billing ledger for duplicates"}, "cur"),
        ep("user", "message", {"text": "ok thanks"}, "cur"),
        ep("user", "message", {"text": "How do I export reports to CSV?"}, "misc"),
        ep("tool", "tool_call", {}),
    ])
    clock.advance(1)
    return memory, batch


async def test_the_golden_example(golden):
    memory, batch = golden
    bundle = await memory.context(T, None, S, TASK, session_id="cur")
    assert bundle.assembled_context == GOLDEN
    assert bundle.token_estimate == 157 == tokencount.count(GOLDEN)
    assert [m.content for m in bundle.facts] == ["I work at Globex", "My name is Ravi Shah", "I work at Globex.",
                                                 "My name is Ravi Shah."]
    assert bundle.provenance["fact_ids"] == [m.id for m in bundle.facts[:2]]
    assert bundle.provenance["summary_ids"] == [m.id for m in bundle.facts[2:]]
    assert bundle.provenance["procedure_ids"] == [] and bundle.procedures == []
    # packing order (by score), not the rendering's grouping: the urgent current-session turn first
    assert bundle.provenance["episode_ids"] == [e.id for e in bundle.episodes]
    assert bundle.episodes[0].id == batch[2].id and {e.id for e in bundle.episodes} == {e.id for e in batch}
    assert [(s.session_id, s.episode_count) for s in bundle.sessions] == [("cur", 3), ("misc", 1), ("old", 2)]
    assert bundle.sessions[0].first_at == bundle.sessions[0].last_at == batch[0].created_at


async def test_the_golden_example_with_the_support_layers_own_resolutions(golden, store):
    """The same example with its resolutions stored by the support layer (§5.14), as the server wires it."""
    memory, _ = golden
    support = Support(store)
    await support.resolve(T, None, ResolutionInput(S, "old", "resolved", "Refunded duplicate charge"))
    await support.resolve(T, None, ResolutionInput(S, "misc", "open"))
    wired = Memory(store, resolutions_of=store_resolutions(store))
    assert (await wired.context(T, None, S, TASK, session_id="cur")).assembled_context == GOLDEN
    unresolved = await Memory(store).context(T, None, S, TASK, session_id="cur")  # no resolutions: other scores
    assert unresolved.assembled_context != GOLDEN


async def test_the_golden_example_within_60_tokens(golden):
    memory, _ = golden
    bundle = await memory.context(T, None, S, TASK, session_id="cur", max_tokens=60)
    assert bundle.assembled_context == (
        "## Task\nRavi reports a duplicate charge on the invoice\n\n## About this user\n- I work at Globex\n\n"
        "## Recent interactions\n### Current session (cur)\n"
        "- [user/message] user: The invoice has a duplicate charge again, this is urgent\n"
        "- [agent/action] Checked the billing ledger for duplicates\n")
    assert bundle.token_estimate == 66  # it can pass the budget: the headings are not packed


async def test_the_golden_example_without_a_session(golden):
    memory, _ = golden
    bundle = await memory.context(T, None, S, TASK)
    lines = bundle.assembled_context.split("## Recent interactions\n")[1].splitlines()
    assert [line.split("] ", 1)[1][:12] for line in lines if line] == [
        "user: The in", "I refunded t", "How do I exp", "My invoice s", "Checked the ", "(no text con", "ok thanks"]
    assert "### " not in bundle.assembled_context
    assert bundle.token_estimate == 147


async def test_an_empty_subject(store):
    bundle = await Memory(store).context(T, None, "nobody", "hello world")
    assert bundle.assembled_context == "## Task\nhello world\n" and bundle.token_estimate == 6
    assert bundle.facts == bundle.episodes == bundle.procedures == bundle.sessions == []
    assert bundle.provenance == {"fact_ids": [], "summary_ids": [], "procedure_ids": [], "episode_ids": []}


async def test_context_is_scoped_to_the_statewave_tenant(store, clock):
    memory = Memory(store)
    await memory.add_episode(T, "a", ep("user", "message", {"text": "I work at Initech"}))
    await memory.add_episode(T, "b", ep("user", "message", {"text": "I work at Globex"}))
    await memory.compile(T, None, S)
    assert "Globex" not in (await memory.context(T, "a", S, "where")).assembled_context
    assert "Initech" in (await memory.context(T, "a", S, "where")).assembled_context
    unscoped = (await memory.context(T, None, S, "where")).assembled_context
    assert "Globex" in unscoped and "Initech" in unscoped
    assert (await memory.context("t2", None, S, "where")).assembled_context == "## Task\nwhere\n"


async def test_context_windows_are_the_newest(store, clock):
    """Decision 2: the newest 30 episodes (upstream took the oldest), processed in ascending order."""
    memory = Memory(store)
    await memory.add_episodes(T, None, [ep("user", "message", {"text": f"message number {i:02d} here"})
                                        for i in range(40)])
    bundle = await memory.context(T, None, S, "x")
    numbers = [int(e.payload["text"].split()[2]) for e in bundle.episodes]
    assert sorted(numbers) == list(range(10, 40))


@pytest.mark.parametrize("field, members", [
    ("subject_id", {"subject_id": ""}), ("task", {"task": ""}), ("task", {"task": "x" * 4001}),
    ("max_tokens", {"max_tokens": 0}), ("max_tokens", {"max_tokens": 128_001}), ("max_tokens", {"max_tokens": True}),
    ("session_id", {"session_id": "s" * 257}),
])
async def test_bad_requests_name_their_field(store, field, members):
    args = {"subject_id": S, "task": "t", "max_tokens": None, "session_id": None} | members
    with pytest.raises(InvalidArgument) as e:
        await Memory(store).context(T, None, args["subject_id"], args["task"], args["max_tokens"], args["session_id"])
    assert e.value.details["loc"] == ["body", field]


# the rules in isolation


def test_clean_and_rel():
    assert clean("user: a\nassistant: b") == "a → b"
    assert clean(" user: a \n\n b\nsystem:   c ") == "a → c"
    assert clean("user:\nassistant:x") == "x"
    assert rel({"a", "b"}, "A c") == 2.5 and rel(set(), "a") == 0 and rel({"a"}, "") == 0


def test_equal_scores_keep_candidate_order():
    bundle = assemble("s", "t", [], [], [], [], [], 4000, 0)
    assert bundle.assembled_context == "## Task\nt\n"


# the query-driven mode


async def test_recall_fills_the_budget_from_the_task_with_provenance(store, clock):
    memory = Memory(store, embedder=HashEmbedder())
    texts = [f"note {i}: the weather was mild and the garden grew" for i in range(60)]
    texts[7] = "I adopted a grey cat called Miso last spring"
    texts[41] = "Miso the cat likes the garden"
    episodes = await memory.add_episodes(T, None, [ep("user", "message", {"text": t}) for t in texts])
    created = (await memory.compile(T, None, S)).memories
    await memory.embed(T, created)
    bundle = await memory.recall(T, None, S, "What is the name of my cat?", max_tokens=200)
    first = bundle.lines[0]
    assert first.via == "search" and first.episode_ids in ([episodes[7].id], [episodes[41].id])
    assert {episodes[7].id, episodes[41].id} <= {i for x in bundle.lines for i in x.episode_ids}
    assert bundle.token_estimate == tokencount.count(bundle.assembled_context) <= 200
    assert bundle.assembled_context.startswith("## Task\nWhat is the name of my cat?\n\n## Relevant memories\n- ")
    for line in bundle.lines:
        assert line.line in bundle.assembled_context and line.memory_id in {m.id for m in created}
    # a budget the search does not fill takes the newest summaries (text search alone: two memories match)
    wide = await Memory(store).recall(T, None, S, "Miso", max_tokens=4000)
    assert {x.via for x in wide.lines} == {"search", "recent"}
    assert "## Recent history" in wide.assembled_context


async def test_recall_skips_memories_whose_episodes_are_covered(store, clock):
    memory = Memory(store)
    await memory.add_episode(T, None, ep("user", "message", {"text": "I work at Initech, on the billing team"}))
    await memory.compile(T, None, S)
    bundle = await memory.recall(T, None, S, "where do I work")
    assert [x.kind for x in bundle.lines] == ["profile_fact"] or [x.kind for x in bundle.lines] == ["episode_summary"]


async def test_recall_is_tenant_scoped(store, clock):
    memory = Memory(store)
    await memory.add_episode(T, "a", ep("user", "message", {"text": "secret plan alpha"}))
    await memory.compile(T, "a", S)
    assert (await memory.recall(T, "b", S, "secret plan")).lines == []
    assert (await memory.recall("t2", None, S, "secret plan")).lines == []
    assert len((await memory.recall(T, "a", S, "secret plan")).lines) == 1


def test_token_counts_add_up_at_line_starts():
    """text_tokens sums cached pieces cut after newlines before a non-space: equal to a whole count."""
    rng = random.Random(3)
    alphabet = ["a", "b", " ", "\n", "\n\n", "- ", "#", "?", "!", "é", "🟢", "1", "23", "\t", "'s", "--"]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert text_tokens(text) == tokencount.count(text), repr(text)
    assert line_tokens("- a line") == tokencount.count("- a line")
