"""Decision 4 on import: with a real embedding provider (a real local OpenAI-compatible /embeddings endpoint
written here), imported active memories get vectors and semantic search finds them; a provider that fails
never fails the import. Both stores."""

from __future__ import annotations

import json

import pytest

from local_http import JSONHandler, LocalServer, running
from stigmer.engine.memory import EpisodeInput, Memory
from stigmer.engine.memory.admin import Admin
from stigmer.support.embeddings import OpenAIEmbedder

T = "t1"
S = "user-42"
WORDS = (("apple", "banana", "fruit"), ("car", "truck", "bus"), ("rain", "sun"))


class TopicEmbeddings(JSONHandler):
    """A text's vector counts the topic words it names (a path of `/down` answers 500)."""

    def do_POST(self):
        body = self.read_json()
        if self.path.startswith("/down"):
            return self.reply(500, b'{"error":{"message":"overloaded"}}')
        data = [{"index": i, "embedding": [float(sum(w in t for w in ws)) for ws in WORDS] if any(
            w in t for ws in WORDS for w in ws) else [0.0, 0.0, 1e-3]} for i, t in enumerate(body["input"])]
        self.reply(200, json.dumps({"data": data}).encode())


@pytest.fixture(scope="module")
def endpoint():
    with running(LocalServer(TopicEmbeddings)) as server:
        yield server


async def exported(store, clock) -> dict:
    """The export of a subject with three active memories and one superseded."""
    plain = Memory(store)
    for text in ("a truck and a car", "banana bread", "I work at Initech", "I work at Globex"):
        await plain.add_episode(T, None, EpisodeInput(S, "chat", "note", {"text": text}))
        clock.advance(1)
    await plain.compile(T, None, S)
    return await Admin(store).export(T, S)


async def test_imported_memories_get_vectors_from_a_real_provider(store, clock, endpoint):
    doc = await exported(store, clock)
    real = Memory(store, embedder=OpenAIEmbedder(endpoint.url + "/v1", "", "topics", 5.0))
    try:
        endpoint.requests.clear()
        result = await Admin(store, embed=real.embed).import_document("t2", doc)
        assert result.memories_imported == 6  # four summaries, two facts (Initech's superseded)
        (request,) = endpoint.requests
        active = [m["content"] for m in doc["memories"] if m["status"] == "active"]
        assert sorted(request["body"]["input"]) == sorted(active)  # only the active ones are embedded
        found = await real.search("t2", None, S, "fruit", semantic=True)
        assert [m.content for m in found][:1] == ["banana bread"]
        assert len(await store.memory_index.vectors("t2", None, S, None, real.finder.embedder.id)) == len(active)
    finally:
        await real.finder.embedder.aclose()


async def test_a_failing_provider_never_fails_the_import(store, clock, endpoint):
    doc = await exported(store, clock)
    down = Memory(store, embedder=OpenAIEmbedder(endpoint.url + "/down", "", "topics", 5.0, 3))
    try:
        result = await Admin(store, embed=down.embed).import_document("t2", doc)
        assert result.memories_imported == 6
        assert len(await down.memories("t2", None, S)) == 6
        assert await store.memory_index.vectors("t2", None, S, None, down.finder.embedder.id) == []
        assert [m.content for m in await down.search("t2", None, S, "banana", semantic=True)] == ["banana bread"]
    finally:
        await down.finder.embedder.aclose()
