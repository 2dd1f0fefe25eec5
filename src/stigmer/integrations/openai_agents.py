"""An OpenAI Agents SDK session kept in a Stigmer conversation (`pip install 'stigmer[openai-agents]'`).

    from agents import Agent, Runner
    from stigmer.client import AsyncClient
    from stigmer.integrations.openai_agents import StigmerSession

    async with AsyncClient("http://127.0.0.1:7474") as client:
        session = StigmerSession("user-42", client=client)
        result = await Runner.run(agent, "Hello", session=session)

A session is the conversation whose external id is `session_id`, created by the first `add_items`. Each
item (a Responses API input item) is one message: its role where it has one (developer as system,
anything else as tool), its readable text as content, and the item itself in the message's metadata
under `openai_agents_item`, so `get_items` gives back exactly what was added, in order. A message written
by other means reads back as `{"role", "content"}` (a tool message with the assistant role). The session
talks to the server only through the async SDK client (docs/integrations.md).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Awaitable, Callable, Iterable, TypeVar

import msgspec
from agents.memory import SessionSettings
from agents.memory.session_settings import coerce_session_settings, resolve_session_limit

from ..client import AsyncClient, ConflictError, Message, NotFoundError

ITEM = "openai_agents_item"  # the metadata member holding the item
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_MESSAGES = 1000  # per request (the server's limit)
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # well inside the server's 10 MiB body limit
PAGE = 1000
T = TypeVar("T")


def item_role(item: dict[str, Any]) -> str:
    return ROLES.get(item.get("role"), "tool")  # type: ignore[arg-type]


def _texts(parts: Any) -> list[str]:
    if isinstance(parts, str):
        return [parts]
    if not isinstance(parts, list):
        return []
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            text = part.get("text") or part.get("refusal") or part.get("transcript")
            if isinstance(text, str):
                out.append(text)
    return out


def item_text(item: dict[str, Any]) -> str:
    """The item as a person would read it: its text, a call as `name(arguments)`, else its JSON."""
    kind = item.get("type")
    if "content" in item:
        texts = _texts(item["content"])
    elif kind == "function_call":
        texts = [f"{item.get('name', '')}({item.get('arguments', '')})"]
    elif "output" in item:
        texts = _texts(item["output"])
    elif kind == "reasoning":
        texts = _texts(item.get("summary"))
    else:
        texts = []
    text = "\n".join(t for t in texts if t) or json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    # A message's content is valid text without U+0000; the item itself is kept as it is.
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "") or str(kind or "item")


def item_message(item: dict[str, Any]) -> dict[str, Any]:
    return {"role": item_role(item), "content": item_text(item), "metadata": {ITEM: item}}


def message_item(m: Message) -> dict[str, Any]:
    if m.metadata is not None and isinstance(m.metadata.get(ITEM), dict):
        return m.metadata[ITEM]
    return {"role": m.role if m.role != "tool" else "assistant", "content": m.content}


def batches(messages: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """Messages in requests the server takes: at most 1000, and at most MAX_REQUEST_BYTES each."""
    batch: list[dict[str, Any]] = []
    size = 0
    for m in messages:
        n = len(msgspec.json.encode(m))
        if batch and (len(batch) == MAX_MESSAGES or size + n > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(m)
        size += n
    if batch:
        yield batch


def _once() -> str:
    return uuid.uuid4().hex  # an Idempotency-Key: the client may then retry the write safely


class StigmerSession:
    """The Agents SDK `Session` protocol over one Stigmer conversation (external id = `session_id`).

    `client` is an `AsyncClient` the caller owns (and closes). `title` and `tags` are given to the
    conversation when the first items create it. `session_settings.limit` is the default of `get_items`.
    """

    session_settings: SessionSettings | None = None

    def __init__(self, session_id: str, *, client: AsyncClient,
                 session_settings: SessionSettings | dict[str, Any] | None = None, title: str | None = None,
                 tags: Iterable[str] | None = None):
        self.session_id = session_id
        self.client = client
        self.session_settings = (coerce_session_settings(session_settings) if session_settings is not None
                                 else SessionSettings())
        self.title = title
        self.tags = list(tags or ())
        self._conversation_id: str | None = None

    async def conversation_id(self) -> str | None:
        """The id of the session's conversation, or None before anything was added."""
        if self._conversation_id is None:
            try:
                found = await self.client.get_conversation_by_external_id(self.session_id, messages=False)
            except NotFoundError:
                return None
            self._conversation_id = found.id
        return self._conversation_id

    async def _on_conversation(self, op: Callable[[str], Awaitable[T]], absent: T) -> T:
        """`op` on the session's conversation; `absent` when there is none. A conversation deleted (and
        maybe made again) since its id was learnt is looked up once more."""
        for _ in range(2):
            conversation_id = await self.conversation_id()
            if conversation_id is None:
                return absent
            try:
                return await op(conversation_id)
            except NotFoundError:
                self._conversation_id = None
        return absent

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """All items in the order added, or the latest `limit` of them (still oldest first)."""
        limit = resolve_session_limit(limit, self.session_settings)
        if limit is not None and limit <= 0:
            return []

        async def read(conversation_id: str) -> list[Message]:
            out: list[Message] = []
            page = await self.client.list_messages(conversation_id, limit=min(limit or PAGE, PAGE), last=limit)
            while True:
                out.extend(page.messages)
                if page.next_cursor is None or (limit is not None and len(out) >= limit):
                    return out[:limit] if limit is not None else out
                page = await self.client.list_messages(conversation_id, limit=PAGE, cursor=page.next_cursor)

        return [message_item(m) for m in await self._on_conversation(read, [])]

    async def add_items(self, items: list[Any]) -> None:
        """Store the items, in order, after those already there (the first add creates the conversation)."""
        for batch in batches([item_message(item) for item in items]):
            async def append(conversation_id: str, batch: list[dict[str, Any]] = batch) -> bool:
                await self.client.append_messages(conversation_id, batch, idempotency_key=_once())
                return True

            if not await self._on_conversation(append, False):
                await self._create(batch, append)

    async def _create(self, batch: list[dict[str, Any]], append: Callable[[str], Awaitable[bool]]) -> None:
        try:
            made = await self.client.create_conversation(external_id=self.session_id, title=self.title,
                                                         tags=self.tags, messages=batch, idempotency_key=_once())
            self._conversation_id = made.id
        except ConflictError:  # another writer made it first: add after theirs
            if not await self._on_conversation(append, False):
                raise

    async def pop_item(self) -> Any | None:
        """Remove and return the latest item (None when the session is empty)."""
        popped = await self._on_conversation(
            lambda conversation_id: self.client.pop_message(conversation_id, idempotency_key=_once()), None)
        return None if popped is None else message_item(popped)

    async def clear_session(self) -> None:
        """Remove every item; the conversation (its title and tags) stays."""
        await self._on_conversation(self.client.clear_messages, 0)
