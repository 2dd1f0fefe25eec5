"""The LLM compiler (Statewave §6.4, Decision 48; docs/memory.md "The LLM compiler").

A run reads the subject's uncompiled episodes (the same 500 as §6.2) **outside** any mutation, asks the model
for their memories with no transaction open, then commits in one mutation that keeps only the episodes still
uncompiled (another compile, on this replica or another, may have taken some: they are skipped) and runs §6.3.
So the model never holds the store's writer, and no episode is compiled twice (Decision 29): the mutations of
a Stigmer tenant are serialised, and the re-check happens inside one. Compiles of one subject in one process
also wait for each other (`_Locks`), so a compile that waited reads after the first committed and does not
ask the model again for the same episodes.

Per batch, any failure (no answer: network, timeout, HTTP status, an oversized or empty body — support/llm.py;
or an answer that breaks the contract below) gives that batch's episodes to the heuristic compiler (§6.2);
the other batches keep the model's memories.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from .compiler import BATCH, Draft, commit_in, emitted, text
from .episodes import Episode
from .memories import MemoryRecord

log = logging.getLogger("stigmer.memory.llm_compiler")

TEXT_CHARS = 4_000  # each episode's text as sent (§6.4)
BATCH_CHARS = 6_000  # the texts of one request, summed (§6.4); the prompt's framing is not counted
CONCURRENCY = 4  # batches of one run in flight at once (§6.4)
KINDS = ("profile_fact", "episode_summary", "procedure")
DEFAULT_KIND = "episode_summary"  # what any other kind becomes (§6.4)
DEFAULT_CONFIDENCE = 0.7  # an item without a usable number: between the heuristic's 0.6 and 0.8
SUMMARY_CHARS = 200  # as the heuristic's summaries
PER_EPISODE = 20  # memories kept per episode; a model's further items are dropped

COMPILE_PROMPT = (
    "You turn episodes (what happened to one subject) into memories worth keeping about that subject. "
    "The user message is a JSON object {\"episodes\": [{\"episode_index\": N, \"text\": \"...\"}]}. "
    "Reply with a JSON array only, no prose: one object per memory, "
    "{\"kind\": \"profile_fact\" | \"episode_summary\" | \"procedure\", \"content\": \"the memory\", "
    "\"summary\": \"at most 200 characters\", \"confidence\": 0.0 to 1.0, \"episode_index\": N}, "
    "where episode_index is the index of the episode the memory comes from. A profile_fact is a durable fact "
    "about the subject (name, employer, location, preference); an episode_summary says what the episode was "
    "about; a procedure is how the subject does or wants something done. Reply [] if nothing is worth keeping.")

_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")


class BadAnswer(ValueError):
    """The model's answer breaks the §6.4 contract; its batch goes to the heuristic."""


def batches(episodes: list[Episode]) -> list[list[tuple[Episode, str]]]:
    """The episodes with text, each text cut to 4,000 chars, packed in order into batches whose texts sum to
    at most 6,000 chars (a new batch starts when the next text would not fit)."""
    out: list[list[tuple[Episode, str]]] = []
    size = BATCH_CHARS + 1
    for e in episodes:
        t = text(e.payload)[:TEXT_CHARS]
        if not t:
            continue  # nothing to send; still marked compiled, as in §6.2
        if size + len(t) > BATCH_CHARS:
            out.append([])
            size = 0
        out[-1].append((e, t))
        size += len(t)
    return out


def prompt(batch: list[tuple[Episode, str]]) -> str:
    return json.dumps({"episodes": [{"episode_index": i, "text": t} for i, (_, t) in enumerate(batch)]},
                      ensure_ascii=False)


def _confidence(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DEFAULT_CONFIDENCE
    return min(max(float(value), 0.0), 1.0)


def parsed(answer: str, n: int) -> list[list[Draft]]:
    """The drafts of each of a batch's `n` episodes, in the answer's order, or BadAnswer: the answer must be a
    JSON array (a Markdown fence around it is accepted) of objects, each with a non-empty string `content` and
    an integer `episode_index` from 0 to n-1. `kind` outside KINDS becomes episode_summary; `summary` (not a
    string: the content) is cut to 200 chars, `content` to 4,000; `confidence` is clamped to [0, 1]."""
    try:
        items = json.loads(_FENCE.sub("", answer.strip()))
    except ValueError:
        raise BadAnswer("not JSON") from None
    if not isinstance(items, list):
        raise BadAnswer("not a JSON array")
    drafts: list[list[Draft]] = [[] for _ in range(n)]
    for item in items:
        if not isinstance(item, dict):
            raise BadAnswer("an item is not an object")
        index, content = item.get("episode_index"), item.get("content")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise BadAnswer(f"episode_index {index!r} is not one of the batch's 0..{n - 1}")
        if not isinstance(content, str) or not content.strip():
            raise BadAnswer("an item has no content")
        content = content.strip()[:TEXT_CHARS]
        kind = item.get("kind") if item.get("kind") in KINDS else DEFAULT_KIND
        summary = item.get("summary")
        summary = (summary.strip() if isinstance(summary, str) and summary.strip() else content)[:SUMMARY_CHARS]
        if len(drafts[index]) < PER_EPISODE:
            drafts[index].append((kind, content, summary, _confidence(item.get("confidence"))))
    return drafts


class _Locks:
    """One asyncio lock per key while someone holds or waits for it."""

    def __init__(self) -> None:
        self._held: dict[Any, tuple[asyncio.Lock, int]] = {}

    async def run(self, key: Any, work: Callable[[], Any]) -> Any:
        lock, users = self._held.get(key, (asyncio.Lock(), 0))
        self._held[key] = (lock, users + 1)
        try:
            async with lock:
                return await work()
        finally:
            lock, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, users - 1)


class LLMCompiler:
    """§6.4 over one provider (support/llm.py `LLM`, configured) and the model its requests name."""

    def __init__(self, llm, model: str | None = None):
        self.llm = llm
        self.model = model or llm.model
        self._locks = _Locks()

    async def compile(self, store, tenant: str, tenant_id: str | None, subject_id: str,
                      committed: Callable[[Any, int, list[MemoryRecord]], None]) -> list[MemoryRecord]:
        """One run; `committed(tx, episodes_taken, created)` runs inside its mutation (the webhook event)."""
        return await self._locks.run((tenant, subject_id), lambda: self._run(store, tenant, tenant_id, subject_id,
                                                                               committed))

    async def _run(self, store, tenant, tenant_id, subject_id, committed) -> list[MemoryRecord]:
        episodes = await store.memory.uncompiled(tenant, tenant_id, subject_id, BATCH)
        if not episodes:
            return []
        drafts = await self.drafts(episodes)

        def commit(tx) -> list[MemoryRecord]:
            still = tx.memory.still_uncompiled([e.id for e in episodes])
            taken, created = commit_in(tx, [e for e in episodes if e.id in still], lambda e: drafts.get(e.id, []))
            committed(tx, taken, created)
            return created

        return await store.submit(tenant, commit)

    async def drafts(self, episodes: list[Episode]) -> dict[str, list[Draft]]:
        """Episode id → its drafts: the model's for each batch it answered well, §6.2's for the others."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(batch: list[tuple[Episode, str]]) -> dict[str, list[Draft]]:
            async with gate:
                answer = await self.llm.complete(COMPILE_PROMPT, prompt(batch), self.model)
            try:
                if answer is None:
                    raise BadAnswer("no answer")  # the provider logged why
                return {e.id: d for (e, _), d in zip(batch, parsed(answer, len(batch)))}
            except BadAnswer as exc:
                if answer is not None:
                    log.warning("llm compiler: %s (model %s); the heuristic compiles %d episode(s)",
                                exc, self.model, len(batch))
                return {e.id: emitted(text(e.payload)) for e, _ in batch}

        out: dict[str, list[Draft]] = {}
        for found in await asyncio.gather(*(one(b) for b in batches(episodes))):
            out |= found
        return out


def compiler_of(settings, llm) -> LLMCompiler | None:
    """The compiler `memory_compiler` asks for: None is the heuristic. `llm` with no endpoint configured
    (`llm_base_url` empty) is the heuristic too, said once here at start-up."""
    if settings.memory_compiler != "llm":
        return None
    if not llm.configured:
        log.warning("memory_compiler is llm but llm_base_url is empty: the heuristic compiler runs")
        return None
    return LLMCompiler(llm, settings.memory_compiler_model or None)
