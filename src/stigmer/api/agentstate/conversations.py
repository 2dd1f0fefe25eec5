"""AgentState conversations, messages, search, tags and AI endpoints (specs/agentstate.md §5.5–5.8), over the
conversation engine (engine/conversations.py), the search engine (engine/conversation_search.py) and the one
LLM provider (support/llm.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any, AsyncIterator

from starlette.responses import Response, StreamingResponse

from ...engine.conversations import (LEVELS, MAX_MESSAGES, OBSERVATION_TYPES, ROLES, STATUSES, Conversation,
                                     Message, MessageInput, validate_tag)
from ...engine.errors import InvalidArgument
from ...services import Services
from ..http import encode
from ..kit.body import request_body
from . import wire
from .states import MAX_BODY
from .surface import Call, Route, route

READ, WRITE = "conversations:read", "conversations:write"
_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_DECIMAL = re.compile(r"[1-9][0-9]{0,15}")
FIELDS = ("id", "project_id", "external_id", "title", "metadata", "message_count", "token_count",
          "total_cost_microdollars", "total_tokens", "created_at", "updated_at", "messages")
_COUNTS = ("token_count", "input_tokens", "output_tokens", "cost_microdollars", "start_time", "end_time")
_EXPORTED = ("id", "role", "content", "metadata", "token_count", "model", "input_tokens", "output_tokens",
             "cost_microdollars", "created_at")
EXPORT_MAX = 100
NO_QUERY = "Query parameter 'q' is required and must not be empty"
NOT_FOUND = "Conversation not found"


# wire shapes


def message_out(m: Message) -> dict[str, Any]:
    return {"id": m.id, "role": m.role, "content": m.content, "metadata": m.metadata, "token_count": m.token_count,
            "model": m.model, "input_tokens": m.input_tokens, "output_tokens": m.output_tokens,
            "cost_microdollars": m.cost_microdollars, "parent_message_id": m.parent_message_id,
            "observation_type": m.observation_type, "start_time": m.start_time, "end_time": m.end_time,
            "status": m.status, "level": m.level, "created_at": m.created_at}


def conversation_out(c: Conversation, messages: bool = False) -> dict[str, Any]:
    """The Conversation shape (§5.5); with `messages` the ones loaded into `c`."""
    out = {"id": c.id, "project_id": c.tenant, "external_id": c.external_id, "title": c.title,
           "metadata": c.metadata, "message_count": c.message_count, "token_count": c.token_count,
           "total_cost_microdollars": c.total_cost_microdollars, "total_tokens": c.total_tokens,
           "created_at": c.created_at, "updated_at": c.updated_at}
    if messages:
        out["messages"] = [message_out(m) for m in c.messages]
    return out


def _exported(c: Conversation) -> dict[str, Any]:
    out = conversation_out(c)
    out["messages"] = [{name: getattr(m, name) for name in _EXPORTED} for m in c.messages]
    return out


# validation


def message_input(item: Any, *, default_role: str | None = None,
                  require_observation_type: bool = False) -> MessageInput:
    """One message input, checked in the order of §5.5 (traces: `role` defaults, `observation_type` required)."""
    if not isinstance(item, dict):
        raise wire.expected("object", item)
    f = wire.Fields(item)
    if default_role is not None and item.get("role") is None:
        role = default_role
    else:
        role = f.enum("role", ROLES, required=True)
    content = f.string("content", 1, required=True)
    metadata = f.obj("metadata")
    counts = {name: f.integer(name, 0, wire.MAX_SAFE) for name in _COUNTS}
    model = f.string("model", 0, 100)
    parent = f.string("parent_message_id")
    observation_type = f.enum("observation_type", OBSERVATION_TYPES, require_observation_type)
    status = f.enum("status", STATUSES)
    level = f.enum("level", LEVELS)
    return MessageInput(role, content, metadata, counts["token_count"] or 0, model, counts["input_tokens"],
                        counts["output_tokens"], counts["cost_microdollars"], parent, observation_type,
                        counts["start_time"], counts["end_time"], status, level)


def message_inputs(f: wire.Fields, lo: int, required: bool) -> list[MessageInput]:
    return [message_input(item) for item in f.array("messages", lo, MAX_MESSAGES, required=required) or []]


def _strings(f: wire.Fields, name: str, lo: int, hi: int, required: bool = False) -> list[str] | None:
    items = f.array(name, lo, hi, required=required)
    return None if items is None else [wire.check_string(v) for v in items]


def _tag(v: Any, code: str = "BAD_REQUEST") -> str:
    """A conversation tag with the §5.7 messages: BAD_REQUEST in a body, INVALID_TAG as the list filter."""
    if not isinstance(v, str):
        raise wire.expected("string", v)
    try:
        return validate_tag(v)
    except InvalidArgument as exc:
        raise wire.fail(400, code, exc.message) from None


def _path_id(call: Call) -> str:
    """GET/PUT/PATCH/DELETE /conversations/{id} check the id's shape (§3.3); other routes find it unknown."""
    if not _ID.fullmatch(call.params[0]):
        raise wire.bad("Invalid conversation id")
    return call.params[0]


def _fields(raw: str | None) -> tuple[frozenset[str], bool]:
    """(members to render, whether messages are among them) from `?fields=` (§5.5.3)."""
    if raw is None or not raw.strip():
        return frozenset(FIELDS), True
    if raw.strip() == "!messages":
        return frozenset(FIELDS) - {"messages"}, False
    names = [n.strip() for n in raw.split(",")]
    invalid = [n for n in names if n not in FIELDS]
    if invalid:
        raise wire.fail(400, "INVALID_FIELD", f"Invalid field(s): {', '.join(invalid)}. "
                        f"Valid fields: {', '.join(FIELDS)}")
    return frozenset(names), "messages" in names


def _search_offset(raw: str | None) -> int:
    if not raw:  # absent or empty, as for every cursor of the surface
        return 0
    if not _DECIMAL.fullmatch(raw):
        raise wire.fail(400, "INVALID_CURSOR", "Invalid cursor")
    return int(raw)


def _texts(messages: list[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def routes(svc: Services) -> list[Route]:
    conversations, llm = svc.conversations, svc.llm

    async def body(call: Call) -> wire.Fields:
        return wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))

    async def create(call: Call) -> Response:
        f = await body(call)
        external_id = f.string("external_id", 0, 1024)
        title = f.string("title")
        metadata = f.obj("metadata")
        messages = message_inputs(f, 0, False)
        c = await conversations.create(call.p.tenant, external_id=external_id, title=title, metadata=metadata,
                                       messages=messages)
        return wire.json(conversation_out(c, messages=True), 201)

    async def list_(call: Call) -> Response:
        q = call.request.query_params
        order = wire.order_of(q.get("order"))
        limit = wire.lenient_limit(q.get("limit"), 50, 100)
        cursor = wire.page_cursor(q.get("cursor"), order)
        rows, nxt = await conversations.list(call.p.tenant, limit=limit, cursor=cursor, order=order,
                                             tag=None if q.get("tag") is None else _tag(q["tag"], "INVALID_TAG"))
        return wire.json({"data": [conversation_out(c) for c in rows],
                          "pagination": {"limit": limit, "next_cursor": None if nxt is None else wire.time_cursor(*nxt)}})

    async def get(call: Call) -> Response:
        conversation_id = _path_id(call)
        wanted, with_messages = _fields(call.request.query_params.get("fields"))
        c = await conversations.get(call.p.tenant, conversation_id, with_messages=with_messages)
        if c is None:
            raise wire.not_found(NOT_FOUND)
        out = conversation_out(c, messages=with_messages)
        return wire.json({k: v for k, v in out.items() if k in wanted})

    async def update(call: Call) -> Response:
        f = await body(call)
        changes = {name: v for name, v in (("title", f.string("title")), ("metadata", f.obj("metadata")))
                   if v is not None}
        conversation_id = _path_id(call)
        c = await wire.or_not_found(conversations.update(call.p.tenant, conversation_id, **changes), NOT_FOUND)
        return wire.json(conversation_out(c))

    async def delete(call: Call) -> Response:
        await wire.or_not_found(conversations.delete(call.p.tenant, _path_id(call)), NOT_FOUND)
        return Response(status_code=204)

    async def by_external_id(call: Call) -> Response:
        c = await conversations.by_external_id(call.p.tenant, call.params[0])
        if c is None:
            raise wire.not_found(NOT_FOUND)
        return wire.json(conversation_out(c, messages=True))

    async def bulk_delete(call: Call) -> Response:
        ids = _strings(await body(call), "ids", 1, 100, required=True)
        return wire.json({"deleted": await conversations.bulk_delete(call.p.tenant, ids)})

    async def export(call: Call) -> Response:
        ids = _strings(await body(call), "ids", 0, EXPORT_MAX)
        found = conversations.export(call.p.tenant, ids or None, limit=EXPORT_MAX)
        first = await anext(found, None)  # a failure to read shows as an error, before any byte is sent
        return StreamingResponse(_export_body(first, found), media_type="application/json")

    async def append(call: Call) -> Response:
        messages = message_inputs(await body(call), 1, True)
        added = await wire.or_not_found(conversations.append(call.p.tenant, call.params[0], messages), NOT_FOUND)
        return wire.json({"messages": [message_out(m) for m in added]}, 201)

    async def messages(call: Call) -> Response:
        q = call.request.query_params
        limit = wire.lenient_limit(q.get("limit"), 100, 500)
        rows, nxt = await wire.or_not_found(
            conversations.messages(call.p.tenant, call.params[0], after=q.get("after"), limit=limit), NOT_FOUND)
        return wire.json({"data": [message_out(m) for m in rows], "pagination": {"limit": limit, "next_cursor": nxt}})

    async def search(call: Call) -> Response:
        q = call.request.query_params
        text = (q.get("q") or "").strip()
        if not text:
            raise wire.bad(NO_QUERY)
        limit = wire.lenient_limit(q.get("limit"), 20, 100)
        offset = _search_offset(q.get("cursor"))
        hits, nxt = await svc.conversation_search.search(call.p.tenant, text, limit=limit, offset=offset)
        return wire.json({"data": [{"id": h.id, "title": h.title, "snippet": h.snippet,
                                    "message_count": h.message_count, "created_at": h.created_at,
                                    "updated_at": h.updated_at} for h in hits],
                          "next_cursor": None if nxt is None else str(nxt)})

    async def all_tags(call: Call) -> Response:
        return wire.json({"data": {"tags": await conversations.all_tags(call.p.tenant)}})

    async def tags(call: Call) -> Response:
        found = await wire.or_not_found(conversations.tags(call.p.tenant, call.params[0]), NOT_FOUND)
        return wire.json({"data": {"tags": found}})

    async def add_tags(call: Call) -> Response:
        items = (await body(call)).array("tags", 1, 50, required=True)
        wanted = [_tag(t) for t in items]
        found = await wire.or_not_found(conversations.add_tags(call.p.tenant, call.params[0], wanted), NOT_FOUND)
        return wire.json({"data": {"tags": found}}, 201)

    async def remove_tag(call: Call) -> Response:
        await wire.or_not_found(conversations.remove_tag(call.p.tenant, call.params[0], call.params[1]), NOT_FOUND)
        return Response(status_code=204)

    async def window(call: Call, first: bool) -> list[Message]:
        c = await conversations.window(call.p.tenant, call.params[0], first=first)
        if c is None:
            raise wire.not_found(NOT_FOUND)
        return c.messages

    async def titled(call: Call, messages: list[Message]) -> str:
        title = await llm.title(_texts(messages))
        await wire.or_not_found(conversations.update(call.p.tenant, call.params[0], title=title), NOT_FOUND)
        return title

    async def generate_title(call: Call) -> Response:
        return wire.json({"title": await titled(call, await window(call, first=True))})

    async def follow_ups(call: Call) -> Response:
        return wire.json({"questions": await llm.follow_ups(_texts(await window(call, first=False)))})

    async def generate_all(call: Call) -> Response:
        first, last = await window(call, first=True), await window(call, first=False)
        title, questions = await asyncio.gather(titled(call, first), llm.follow_ups(_texts(last)))
        return wire.json({"title": title, "follow_ups": questions})

    # Literal segments first: the dispatcher takes the first route that matches (§4).
    return [
        route("GET", "/conversations/search", READ, search, tokens=False),
        route("POST", "/conversations/bulk-delete", WRITE, bulk_delete, tokens=False),
        route("POST", "/conversations/export", READ, export, tokens=False),
        route("GET", "/conversations/by-external-id/{external_id}", READ, by_external_id, tokens=False),
        route("POST", "/conversations", WRITE, create, tokens=False),
        route("GET", "/conversations", READ, list_, tokens=False),
        route("GET", "/conversations/{id}", READ, get, tokens=False),
        route("PUT", "/conversations/{id}", WRITE, update, tokens=False),
        route("PATCH", "/conversations/{id}", WRITE, update, tokens=False),
        route("DELETE", "/conversations/{id}", WRITE, delete, tokens=False),
        route("POST", "/conversations/{id}/messages", WRITE, append, tokens=False),
        route("GET", "/conversations/{id}/messages", READ, messages, tokens=False),
        route("POST", "/conversations/{id}/generate-title", WRITE, generate_title, tokens=False),
        route("POST", "/conversations/{id}/follow-ups", WRITE, follow_ups, tokens=False),
        route("POST", "/conversations/{id}/generate-all", WRITE, generate_all, tokens=False),
        route("GET", "/tags", READ, all_tags, tokens=False),
        route("GET", "/conversations/{id}/tags", READ, tags, tokens=False),
        route("POST", "/conversations/{id}/tags", WRITE, add_tags, tokens=False),
        route("DELETE", "/conversations/{id}/tags/{tag}", WRITE, remove_tag, tokens=False),
    ]


async def _export_body(first: Conversation | None, rest: AsyncIterator[Conversation]) -> AsyncIterator[bytes]:
    """`{"data":[…],"count":n}` written one conversation at a time, so an export never sits whole in memory."""
    if first is None:
        yield b'{"data":[],"count":0}'
        return
    count = 1
    yield b'{"data":[' + encode(_exported(first))
    async for c in rest:
        yield b"," + encode(_exported(c))
        count += 1
    yield b'],"count":%d}' % count
