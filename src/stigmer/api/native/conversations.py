"""Native conversation routes: /v1/conversations, their messages and tags, and the NDJSON export.
Validate, check the scope, call the conversation engine, render (docs/api.md#conversations)."""

from __future__ import annotations

from typing import Any, AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...engine.access import CONVERSATIONS_READ as READ, CONVERSATIONS_WRITE as WRITE, check_conversation
from ...engine.conversation_search import MAX_LIMIT as MAX_SEARCH_PAGE, SearchHit, highlights, tokens
from ...engine.conversations import Conversation, Message, MessageInput
from ...engine.errors import InvalidArgument
from ...services import Services
from ..errors import APIError
from ..http import encode, json_response, rfc3339
from ..kit.body import request_body
from ..kit.cursors import decode_cursor, decode_row_cursor, encode_cursor, encode_row_cursor
from ..kit.idempotency import idempotent
from ..kit.params import optional_int, parse_bool
from ..kit.routing import by_method
from ..kit.surface import principal
from .kv import _decode
from .models import Out, convert

BODY_LIMIT = 10 * 1024 * 1024  # 1000 messages with their metadata (AgentState's limit too)
MAX_PAGE = 1000
DEFAULT_PAGE = 100
DEFAULT_SEARCH_PAGE = 20
NDJSON = "application/x-ndjson"


# request and response models


class MessageIn(MessageInput, forbid_unknown_fields=True):
    """One message: `role` system, user, assistant or tool; `content` at least one character; the rest
    optional (docs/api.md#conversations)."""


class CreateConversationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/conversations."""

    external_id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] = []
    messages: list[MessageIn] = []


class UpdateConversationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of PATCH /v1/conversations/{id}: members left out are unchanged, null clears one."""

    title: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    external_id: str | None | msgspec.UnsetType = msgspec.UNSET


class AppendRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/conversations/{id}/messages."""

    messages: list[MessageIn]


class TagsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/conversations/{id}/tags."""

    tags: list[str]


class MessageOut(Out):
    id: str
    conversation_id: str
    position: int  # 0-based insertion order in the conversation
    role: str
    content: str
    metadata: dict[str, Any] | None
    token_count: int
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_microdollars: int | None
    parent_message_id: str | None
    observation_type: str | None
    start_time: int | None
    end_time: int | None
    status: str | None
    level: str | None
    created_at: str


class ConversationOut(Out):
    """A conversation without its messages."""

    id: str
    external_id: str | None
    title: str | None
    metadata: dict[str, Any] | None
    tags: list[str]
    message_count: int
    token_count: int
    total_tokens: int
    total_cost_microdollars: int
    created_at: str
    updated_at: str


class ConversationWithMessagesOut(ConversationOut):
    """A conversation and its messages, in order."""

    messages: list[MessageOut]


class ConversationsOut(Out):
    conversations: list[ConversationOut]
    next_cursor: str | None


class MessagesOut(Out):
    messages: list[MessageOut]
    next_cursor: str | None = None


class PoppedOut(Out):
    message: MessageOut | None  # null when the conversation had no message


class ClearedOut(Out):
    deleted: int  # messages removed


class DeletedConversationOut(Out):
    deleted: bool


class TagsOut(Out):
    tags: list[str]


class SearchHitOut(Out):
    """A matching conversation: its best message's snippet and where in it the query's tokens are."""

    id: str
    title: str | None
    snippet: str
    highlights: list[list[int]]  # [start, end] pairs: code point offsets in `snippet` (end exclusive), in order
    message_count: int
    created_at: str
    updated_at: str


class SearchOut(Out):
    hits: list[SearchHitOut]  # best first
    next_cursor: str | None


# rendering


def _time(ms: int) -> str:
    return rfc3339(ms / 1000)  # type: ignore[return-value]


def message_out(m: Message) -> MessageOut:
    return MessageOut(m.id, m.conversation_id, m.position, m.role, m.content, m.metadata, m.token_count, m.model,
                      m.input_tokens, m.output_tokens, m.cost_microdollars, m.parent_message_id, m.observation_type,
                      m.start_time, m.end_time, m.status, m.level, _time(m.created_at))


def _members(c: Conversation) -> tuple:
    return (c.id, c.external_id, c.title, c.metadata, c.tags, c.message_count, c.token_count, c.total_tokens,
            c.total_cost_microdollars, _time(c.created_at), _time(c.updated_at))


def conversation_out(c: Conversation, with_messages: bool = True) -> ConversationOut:
    if not with_messages:
        return ConversationOut(*_members(c))
    return ConversationWithMessagesOut(*_members(c), [message_out(m) for m in c.messages])


def _message_cursor(raw: str | None) -> str | None:
    return decode_cursor(raw) if raw else None


def search_hit_out(hit: SearchHit, wanted: set[str]) -> SearchHitOut:
    return SearchHitOut(hit.id, hit.title, hit.snippet, [list(at) for at in highlights(hit.snippet, wanted)],
                        hit.message_count, _time(hit.created_at), _time(hit.updated_at))


def _search_offset(raw: str | None) -> int:
    """A search page's cursor stands for the rank it starts at."""
    if not raw:
        return 0
    at = decode_cursor(raw)
    if not at.isascii() or not at.isdigit() or len(at) > 18:
        raise InvalidArgument("invalid cursor", field="cursor")
    return int(at)


def routes(svc: Services) -> list[Route]:
    convs = svc.conversations

    def allowed(request: Request, scope: str, conversation_id: str = "") -> str:
        p = principal(request)
        check_conversation(p, scope, conversation_id)
        return p.tenant

    def not_found(conversation_id: str) -> APIError:
        return APIError(404, "not_found", "Conversation not found", {"conversation_id": conversation_id})

    async def body(request: Request, model: type) -> Any:
        return convert(_decode(await request_body(request, BODY_LIMIT)), model)

    def once(handler):  # Idempotency-Key on every write
        return idempotent(svc.idempotency, handler, body_limit=BODY_LIMIT)

    async def create(request: Request) -> Response:
        tenant = allowed(request, WRITE)
        req: CreateConversationRequest = await body(request, CreateConversationRequest)
        c = await convs.create(tenant, external_id=req.external_id, title=req.title, metadata=req.metadata,
                               tags=req.tags, messages=req.messages)
        return json_response(conversation_out(c), 201)

    async def list_conversations(request: Request) -> Response:
        tenant = allowed(request, READ)
        q = request.query_params
        order = q.get("order") or "desc"
        rows, nxt = await convs.list(tenant, limit=optional_int(q.get("limit"), "limit", DEFAULT_PAGE, 1, MAX_PAGE),
                                     cursor=decode_row_cursor(q.get("cursor")), order=order, tag=q.get("tag"))
        return json_response(ConversationsOut([conversation_out(c, False) for c in rows], encode_row_cursor(nxt)))

    def with_messages(request: Request) -> bool:
        return parse_bool(request.query_params.get("messages"), "messages", True)

    async def get_conversation(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        tenant = allowed(request, READ, conversation_id)
        wanted = with_messages(request)
        c = await convs.get(tenant, conversation_id, wanted)
        if c is None:
            raise not_found(conversation_id)
        return json_response(conversation_out(c, wanted))

    async def by_external_id(request: Request) -> Response:
        tenant = allowed(request, READ)
        external_id = request.path_params["external_id"]
        wanted = with_messages(request)
        c = await convs.by_external_id(tenant, external_id, wanted)
        if c is None:
            raise APIError(404, "not_found", "Conversation not found", {"external_id": external_id})
        return json_response(conversation_out(c, wanted))

    async def update(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        tenant = allowed(request, WRITE, conversation_id)
        req: UpdateConversationRequest = await body(request, UpdateConversationRequest)
        c = await convs.update(tenant, conversation_id, title=req.title, metadata=req.metadata,
                               external_id=req.external_id)
        return json_response(conversation_out(c, False))

    async def delete(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        await convs.delete(allowed(request, WRITE, conversation_id), conversation_id)
        return json_response(DeletedConversationOut(True))

    async def append(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        tenant = allowed(request, WRITE, conversation_id)
        req: AppendRequest = await body(request, AppendRequest)
        added = await convs.append(tenant, conversation_id, req.messages)
        return json_response(MessagesOut([message_out(m) for m in added]), 201)

    async def list_messages(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        tenant = allowed(request, READ, conversation_id)
        q = request.query_params
        rows, last_id = await convs.messages(
            tenant, conversation_id, after=_message_cursor(q.get("cursor")),
            limit=optional_int(q.get("limit"), "limit", DEFAULT_PAGE, 1, MAX_PAGE), last=optional_int(q.get("last"), "last"))
        return json_response(MessagesOut([message_out(m) for m in rows],
                                         encode_cursor(last_id) if last_id is not None else None))

    async def clear(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        return json_response(ClearedOut(await convs.clear_messages(allowed(request, WRITE, conversation_id),
                                                                   conversation_id)))

    async def pop(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        m = await convs.pop_message(allowed(request, WRITE, conversation_id), conversation_id)
        return json_response(PoppedOut(None if m is None else message_out(m)))

    async def get_tags(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        return json_response(TagsOut(await convs.tags(allowed(request, READ, conversation_id), conversation_id)))

    async def add_tags(request: Request) -> Response:
        conversation_id = request.path_params["id"]
        tenant = allowed(request, WRITE, conversation_id)
        req: TagsRequest = await body(request, TagsRequest)
        return json_response(TagsOut(await convs.add_tags(tenant, conversation_id, req.tags)))

    async def remove_tag(request: Request) -> Response:
        p = request.path_params
        tenant = allowed(request, WRITE, p["id"])
        return json_response(TagsOut(await convs.remove_tag(tenant, p["id"], p["tag"])))

    async def all_tags(request: Request) -> Response:
        return json_response(TagsOut(await convs.all_tags(allowed(request, READ))))

    async def search(request: Request) -> Response:
        tenant = allowed(request, READ)
        q = request.query_params
        text = (q.get("q") or "").strip()
        if not text:
            raise InvalidArgument("q is required: the text to search for", field="q")
        limit = optional_int(q.get("limit"), "limit", DEFAULT_SEARCH_PAGE, 1, MAX_SEARCH_PAGE)
        hits, nxt = await svc.conversation_search.search(tenant, text, limit=limit, offset=_search_offset(q.get("cursor")))
        wanted = set(tokens(text))
        return json_response(SearchOut([search_hit_out(h, wanted) for h in hits],
                                       None if nxt is None else encode_cursor(str(nxt))))

    async def export(request: Request) -> Response:
        tenant = allowed(request, READ)
        limit = optional_int(request.query_params.get("limit"), "limit", None, 1, 2**31)
        return StreamingResponse(_lines(convs.export(tenant, limit=limit)), media_type=NDJSON)

    return [
        Route("/v1/conversations", by_method({"GET": list_conversations, "POST": once(create)}),
              methods=["GET", "POST"]),
        Route("/v1/conversations:export", export, methods=["GET"]),
        Route("/v1/conversations:tags", all_tags, methods=["GET"]),
        Route("/v1/conversations:search", search, methods=["GET"]),
        Route("/v1/conversations:by-external-id/{external_id:path}", by_external_id, methods=["GET"]),
        Route("/v1/conversations/{id}", by_method({"GET": get_conversation, "PATCH": once(update),
                                                    "DELETE": once(delete)}), methods=["GET", "PATCH", "DELETE"]),
        Route("/v1/conversations/{id}/messages", by_method({"GET": list_messages, "POST": once(append),
                                                             "DELETE": once(clear)}),
              methods=["GET", "POST", "DELETE"]),
        Route("/v1/conversations/{id}/messages/last", once(pop), methods=["DELETE"]),
        Route("/v1/conversations/{id}/tags", by_method({"GET": get_tags, "POST": once(add_tags)}),
              methods=["GET", "POST"]),
        Route("/v1/conversations/{id}/tags/{tag}", once(remove_tag), methods=["DELETE"]),
    ]


async def _lines(conversations: AsyncIterator[Conversation]) -> AsyncIterator[bytes]:
    """One conversation with all its messages per line, as the engine reads them page by page."""
    async for c in conversations:
        yield encode(conversation_out(c)) + b"\n"
