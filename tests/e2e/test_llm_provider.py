"""The LLM provider against a real chat-completions server (tests/chat_server.py: real HTTP, one behaviour per
path prefix)."""

from __future__ import annotations

import logging
import time

import pytest

from chat_server import FOLLOW_UPS, TITLE, running_chat_server
from local_http import free_port
from stigmer.config import Settings
from stigmer.support.llm import LLM, TITLE_PROMPT

KEY = "sk-test-7f3a9c-NEVER-LOGGED"
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def chat():
    with running_chat_server() as server:
        yield server


@pytest.fixture
async def make_llm():
    made: list[LLM] = []

    def make(base_url: str, key: str = KEY, timeout: float = TIMEOUT) -> LLM:
        made.append(LLM(base_url, key, "test-model", timeout))
        return made[-1]

    yield make
    for llm in made:
        await llm.aclose()


CONVERSATION = [{"role": "user", "content": "How do I   configure leases for my agents?"},
                {"role": "assistant", "content": "Use a TTL."}]
HEURISTIC = "How do I configure leases for my agents?"


async def test_a_good_answer_is_used(chat, make_llm):
    llm = make_llm(chat.url + "/good")
    assert llm.configured
    assert await llm.complete("Say pong.", "ping") == "pong"
    assert await llm.title(CONVERSATION) == TITLE
    assert await llm.follow_ups(CONVERSATION) == FOLLOW_UPS


async def test_the_request_is_a_chat_completion_with_the_bearer_key(chat, make_llm):
    llm = make_llm(chat.url + "/good/")  # a trailing slash is not doubled
    chat.requests.clear()
    await llm.title(CONVERSATION)
    (request,) = chat.requests
    assert request["path"] == "/good/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "test-model"
    system, prompt = request["body"]["messages"]
    assert system == {"role": "system", "content": TITLE_PROMPT}
    assert prompt["role"] == "user"
    assert "user: How do I   configure leases" in prompt["content"]
    assert "assistant: Use a TTL." in prompt["content"]


async def test_no_key_sends_no_authorization_header(chat, make_llm):
    chat.requests.clear()
    assert await make_llm(chat.url + "/good", key="").complete("s", "u") == "pong"
    assert "Authorization" not in chat.requests[0]["headers"]


@pytest.mark.parametrize("mode", ["slow", "trickle"])
async def test_a_slow_server_falls_back_within_the_timeout(chat, make_llm, mode):
    llm = make_llm(chat.url + "/" + mode)
    for call, fallback in ((llm.title(CONVERSATION), HEURISTIC), (llm.follow_ups(CONVERSATION), []),
                           (llm.complete("s", "u"), None)):
        started = time.monotonic()
        assert await call == fallback
        elapsed = time.monotonic() - started
        assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 1.0, elapsed


@pytest.mark.parametrize("mode", ["error", "badjson", "empty", "nocontent", "huge", "missing"])
async def test_a_bad_answer_falls_back(chat, make_llm, mode):
    llm = make_llm(chat.url + "/" + mode)  # `missing`: a 404
    assert await llm.complete("s", "u") is None
    assert await llm.title(CONVERSATION) == HEURISTIC
    assert await llm.follow_ups(CONVERSATION) == []


async def test_connection_refused_falls_back_at_once(make_llm):
    llm = make_llm(f"http://127.0.0.1:{free_port()}/v1", timeout=5.0)
    started = time.monotonic()
    assert await llm.title(CONVERSATION) == HEURISTIC
    assert await llm.follow_ups(CONVERSATION) == []
    assert time.monotonic() - started < 2.0


async def test_the_key_is_never_logged_nor_shown(chat, make_llm, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log requests at debug
    for mode in ("good", "slow", "error", "badjson", "huge"):
        llm = make_llm(chat.url + "/" + mode)
        await llm.title(CONVERSATION)
        assert KEY not in repr(llm) and KEY not in str(llm)
    await make_llm(f"http://127.0.0.1:{free_port()}/v1").complete("s", "u")
    warnings = [r for r in caplog.records if r.name == "stigmer.llm" and r.levelno == logging.WARNING]
    assert len(warnings) == 5, caplog.text  # slow, error, badjson, huge and refused each said why
    assert any("HTTP 500" in r.getMessage() for r in warnings)
    assert KEY not in caplog.text
    assert all(KEY not in str(r.args) for r in caplog.records)


def test_from_settings_reads_the_four_settings():
    settings = Settings.load(environ={"STIGMER_LLM_BASE_URL": "http://127.0.0.1:1/v1", "STIGMER_LLM_API_KEY": KEY,
                                      "STIGMER_LLM_MODEL": "tiny", "STIGMER_LLM_TIMEOUT_SECONDS": "2.5"})
    llm = LLM.from_settings(settings)
    assert (llm.base_url, llm.model, llm.timeout, llm.configured) == ("http://127.0.0.1:1/v1", "tiny", 2.5, True)
    assert KEY not in repr(llm)
    assert settings.public()["llm_api_key"] == "(set)"
    assert not LLM.from_settings(Settings.load(environ={})).configured
