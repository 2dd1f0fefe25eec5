"""The `openai:<model>` embedder against a real embeddings server written here (http.server in a thread, real HTTP,
one behaviour per path prefix): answers in order and shuffled, batching, the dimension probe, and every failure
raising EmbeddingUnavailable with one warning and never the key."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import numpy as np
import pytest

from local_http import JSONHandler, LocalServer, free_port, running
from stigmer.support.embeddings import MAX_RESPONSE_BYTES, OPENAI_BATCH, EmbeddingUnavailable, OpenAIEmbedder

KEY = "sk-embed-51c0ffee-NEVER-LOGGED"
TIMEOUT = 0.5  # of the slow-server tests; the others allow 5 s, as a busy test machine can be slow
DIMENSION = 8
SLOW_SECONDS = 3.0


def server_vector(text: str) -> list[float]:
    """What the test server answers for `text`: 8 numbers from its SHA-256, not normalised."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 127.5) / 10 for b in digest[:DIMENSION]]


def expected(texts: list[str]) -> np.ndarray:
    rows = np.array([server_vector(t) for t in texts])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class EmbeddingHandler(JSONHandler):
    def do_POST(self):
        body = self.read_json()
        mode = self.path.split("/")[1]
        if self.path != f"/{mode}/embeddings":
            return self.reply(404, b'{"error":"not found"}')
        data = [{"object": "embedding", "index": i, "embedding": server_vector(text)}
                for i, text in enumerate(body["input"])]
        if mode == "shuffled":
            data = data[1::2] + data[0::2]
        elif mode == "slow":
            self.server.release.wait(SLOW_SECONDS)
        elif mode == "error":
            return self.reply(500, b'{"error":{"message":"overloaded"}}')
        elif mode == "badjson":
            return self.reply(200, b'{"data": [{"index": 0, "embedding": [0.1, ')
        elif mode == "short":  # one vector fewer than asked
            data = data[:-1]
        elif mode == "ragged":
            data[-1]["embedding"] = data[-1]["embedding"][:-1]
        elif mode == "strings":
            data[0]["embedding"] = [str(x) for x in data[0]["embedding"]]
        elif mode == "nan":
            return self.reply(200, b'{"data": [{"index": 0, "embedding": [NaN, 1.0]}]}')
        elif mode == "huge":
            return self.reply(200, b'{"data": [' + b" " * MAX_RESPONSE_BYTES + b"]}")
        elif mode != "good":
            return self.reply(404, b'{"error":"not found"}')
        self.reply(200, json.dumps({"object": "list", "model": body["model"], "data": data}).encode())


@pytest.fixture(scope="module")
def server():
    with running(LocalServer(EmbeddingHandler)) as started:
        yield started


@pytest.fixture
async def make():
    made: list[OpenAIEmbedder] = []

    def make(base_url: str, key: str = KEY, timeout: float = 5.0, dimension: int = 0) -> OpenAIEmbedder:
        made.append(OpenAIEmbedder(base_url, key, "embed-test", timeout, dimension))
        return made[-1]

    yield make
    for embedder in made:
        await embedder.aclose()


TEXTS = ["The quick brown fox", "Quarterly revenue grew", "ünïcödé ✓"]


async def test_a_good_answer_gives_normalised_rows_in_input_order(server, make):
    embedder = make(server.url + "/good/")  # a trailing slash is not doubled
    server.requests.clear()
    vectors = await embedder.embed(TEXTS)
    assert vectors.dtype == np.float64 and vectors.shape == (3, DIMENSION)
    assert np.allclose(vectors, expected(TEXTS), rtol=0, atol=1e-12)
    assert embedder.dimension == DIMENSION  # learned from the first answer
    (request,) = server.requests
    assert request["path"] == "/good/embeddings"
    assert request["body"] == {"model": "embed-test", "input": TEXTS}
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"


async def test_shuffled_indices_are_put_back_in_order(server, make):
    vectors = await make(server.url + "/shuffled").embed(TEXTS + ["four", "five"])
    assert np.allclose(vectors, expected(TEXTS + ["four", "five"]), rtol=0, atol=1e-12)


async def test_inputs_are_sent_in_batches_and_empty_texts_are_not_sent(server, make):
    texts = [f"text number {i}" for i in range(2 * OPENAI_BATCH + 22)]
    server.requests.clear()
    vectors = await make(server.url + "/good").embed(texts[:5] + [""] + texts[5:])
    assert [len(r["body"]["input"]) for r in server.requests] == [OPENAI_BATCH, OPENAI_BATCH, 22]
    assert [t for r in server.requests for t in r["body"]["input"]] == texts
    assert not vectors[5].any()
    assert np.allclose(np.delete(vectors, 5, axis=0), expected(texts), rtol=0, atol=1e-12)
    server.requests.clear()
    assert (await make(server.url + "/good", dimension=DIMENSION).embed(["", ""])).shape == (2, DIMENSION)
    assert server.requests == []


async def test_the_dimension_probe_asks_once(server, make):
    embedder = make(server.url + "/good")
    server.requests.clear()
    assert await embedder.probe() == DIMENSION
    assert await embedder.probe() == DIMENSION
    assert len(server.requests) == 1
    assert await make(server.url + "/good", dimension=DIMENSION).probe() == DIMENSION
    assert len(server.requests) == 1  # a configured dimension needs no probe


async def test_no_key_sends_no_authorization_header(server, make):
    server.requests.clear()
    await make(server.url + "/good", key="").embed(["x"])
    assert "Authorization" not in server.requests[0]["headers"]


async def test_a_wrong_dimension_is_unavailable(server, make):
    with pytest.raises(EmbeddingUnavailable, match="8 dimensions, expected 16"):
        await make(server.url + "/good", dimension=16).embed(["x"])


@pytest.mark.parametrize("mode", ["error", "badjson", "short", "ragged", "strings", "nan", "huge", "missing"])
async def test_a_bad_answer_is_unavailable(server, make, caplog, mode):
    embedder = make(server.url + "/" + mode)  # `missing`: a 404
    with pytest.raises(EmbeddingUnavailable):
        await embedder.embed(TEXTS)
    warnings = [r for r in caplog.records if r.name == "stigmer.embeddings" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text


async def test_a_slow_server_is_unavailable_within_the_timeout(server, make):
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="timed out"):
        await make(server.url + "/slow", timeout=TIMEOUT).embed(TEXTS)
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 1.0, elapsed


async def test_a_refused_connection_is_unavailable_at_once(make):
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="ConnectError"):
        await make(f"http://127.0.0.1:{free_port()}/v1", timeout=5.0).embed(TEXTS)
    assert time.monotonic() - started < 2.0


async def test_the_key_is_never_logged_nor_shown(server, make, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log requests at debug
    messages = []
    for base in [server.url + "/" + m for m in ("good", "slow", "error", "badjson", "huge")] + [
            f"http://127.0.0.1:{free_port()}/v1"]:
        embedder = make(base, timeout=TIMEOUT if base.endswith("/slow") else 5.0)
        try:
            await embedder.embed(TEXTS)
        except EmbeddingUnavailable as failure:
            messages.append(str(failure))
        messages.append(repr(embedder))
    with pytest.raises(EmbeddingUnavailable) as raised:
        await make(server.url + "/error").embed(TEXTS)
    messages += [str(raised.value), repr(raised.value)]
    assert "api_key=(set)" in messages[0] and len(messages) == 13
    assert all(KEY not in m for m in messages)
    assert KEY not in caplog.text
    assert all(KEY not in str(r.args) for r in caplog.records)
