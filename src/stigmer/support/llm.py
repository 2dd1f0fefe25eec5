"""The LLM provider: an OpenAI-compatible chat-completions endpoint when configured, heuristics otherwise.

Nothing here raises to a caller because of the model. `complete` answers None when no endpoint is configured
or the call fails in any way (timeout, connection, non-2xx, oversized or malformed answer, empty content);
`title` and `follow_ups` then fall back to the deterministic rules of AgentState D7. The whole call, a retry
included, is bounded by the timeout. The API key goes only into the `Authorization` header of the request:
never into a log line, an exception message or a repr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from .outbound import LoopClient, read_bounded

log = logging.getLogger("stigmer.llm")

MAX_RESPONSE_BYTES = 1 << 20  # a chat answer is small; a bigger body is a broken or hostile endpoint
TITLE_MAX_CHARS = 60  # D7 and spec §5.8: titles are cut at a word boundary within 60 characters
FOLLOW_UP_MAX_CHARS = 200
WINDOW = 20  # spec §5.8: the first 20 messages feed the title, the last 20 the follow-ups
MESSAGE_CHARS = 2000  # each message as sent to the model, so a prompt stays small
UNTITLED = "Untitled conversation"

TITLE_PROMPT = ("Write a short title (at most 8 words) for the conversation below. "
                "Reply with the title only: no quotes, no punctuation at the end.")
FOLLOW_UPS_PROMPT = ("Suggest up to {n} short follow-up questions the user could ask next in the conversation "
                     "below. Reply with a JSON array of strings only.")

_SPACES = re.compile(r"\s+")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _cut(text: str, limit: int) -> str:
    """`text` if it fits, else cut at the last space within the first `limit` chars (hard cut if none)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return head[:space] if space > 0 else head


def heuristic_title(messages: Iterable[Mapping[str, Any]]) -> str:
    """D7: the first `user` message, whitespace collapsed, cut to 60 chars at a word boundary."""
    for message in messages:
        if message.get("role") == "user":
            content = message.get("content")
            return _cut(_one_line(content if isinstance(content, str) else ""), TITLE_MAX_CHARS)
    return UNTITLED


def heuristic_follow_ups(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """D7: no model, no follow-up questions."""
    return []


def clean_title(text: str) -> str:
    """A model's title: first non-empty line, surrounding quotes stripped, cut like the heuristic ('' if none)."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = _one_line(line)
    if line[:6].lower() == "title:":
        line = line[6:].strip()
    while len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
        line = line[1:-1].strip()
    return _cut(line.strip(_QUOTES + " "), TITLE_MAX_CHARS)


def parse_follow_ups(text: str, n: int) -> list[str]:
    """A JSON array of strings, or else one question per line (list marks dropped); at most `n`, non-empty."""
    body = _FENCE.sub("", text.strip())
    items: list[Any]
    try:
        parsed = json.loads(body)
        items = parsed if isinstance(parsed, list) else [parsed] if isinstance(parsed, str) else []
    except ValueError:
        items = [_LIST_MARK.sub("", line) for line in body.splitlines()]
    out = []
    for item in items:
        if isinstance(item, str) and (question := _cut(_one_line(item), FOLLOW_UP_MAX_CHARS)):
            out.append(question)
    return out[:max(n, 0)]


def transcript(messages: Iterable[Mapping[str, Any]]) -> str:
    """The messages as `role: content` lines, each content cut to MESSAGE_CHARS."""
    lines = []
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        lines.append(f"{message.get('role', 'user')}: {text[:MESSAGE_CHARS]}")
    return "\n".join(lines)


class LLM:
    """One chat-completions endpoint (or none: `base_url` empty). Share one per process; `aclose()` at shutdown."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = (base_url or "").strip().rstrip("/")
        self._api_key = api_key or ""
        self.model = model
        self.timeout = float(timeout)
        self._http = LoopClient(self.timeout, transport)

    @classmethod
    def from_settings(cls, settings: Any) -> LLM:
        return cls(settings.llm_base_url, settings.llm_api_key, settings.llm_model, settings.llm_timeout_seconds)

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    def __repr__(self) -> str:  # the key is never shown
        return (f"LLM(base_url={self.base_url!r}, model={self.model!r}, timeout={self.timeout:g}, "
                f"api_key={'(set)' if self._api_key else '(none)'})")

    async def title(self, messages: list[Mapping[str, Any]]) -> str:
        """A title for a conversation from its first 20 messages: the model's, else the heuristic's."""
        first = list(messages[:WINDOW])
        if self.configured and first:
            answer = await self.complete(TITLE_PROMPT, transcript(first))
            if answer and (title := clean_title(answer)):
                return title
        return heuristic_title(first)

    async def follow_ups(self, messages: list[Mapping[str, Any]], n: int = 3) -> list[str]:
        """Up to `n` follow-up questions from the last 20 messages; [] without a model or on any failure."""
        last = list(messages[-WINDOW:]) if messages else []
        if not self.configured or not last or n <= 0:
            return heuristic_follow_ups(last)
        answer = await self.complete(FOLLOW_UPS_PROMPT.format(n=n), transcript(last))
        return parse_follow_ups(answer, n) if answer else heuristic_follow_ups(last)

    async def complete(self, system: str, user: str, model: str | None = None) -> str | None:
        """The model's answer to one system + user prompt, trimmed; None when unconfigured or on any failure.
        `model` names another model of the same endpoint (the memory compiler's); default `self.model`."""
        if not self.configured:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                return await self._post(system, user, model or self.model)
        except TimeoutError:
            self._failed("timed out", model)
        except httpx.HTTPError as exc:
            self._failed(type(exc).__name__, model)
        except Exception as exc:  # never raise to the caller because of the model
            self._failed(f"unexpected {type(exc).__name__}", model)
        return None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, system: str, user: str, model: str) -> str | None:
        body = {"model": model, "messages": [{"role": "system", "content": system},
                                                  {"role": "user", "content": user}]}
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        client = self._http.get()
        for attempt in (1, 2):
            try:
                async with client.stream("POST", self.base_url + "/chat/completions",
                                         json=body, headers=headers) as response:
                    if not response.is_success:
                        return self._failed(f"HTTP {response.status_code}", model)
                    raw = await read_bounded(response, MAX_RESPONSE_BYTES)
                    if raw is None:
                        return self._failed(f"answer larger than {MAX_RESPONSE_BYTES} bytes", model)
                break
            except httpx.ConnectError:  # one retry for a refused or dropped connection, never for a timeout
                if attempt == 2:
                    raise
        return _answer(raw) or self._failed("no usable content in the answer", model)

    def _failed(self, why: str, model: str | None = None) -> None:
        log.warning("llm: %s (model %s); using the heuristic", why, model or self.model)


def _answer(raw: bytes) -> str | None:
    """choices[0].message.content of a chat-completions answer, trimmed; None if absent or empty."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return (content.strip() or None) if isinstance(content, str) else None
