"""AgentState traces (specs/agentstate.md §5.9, D24), over the trace engine (engine/traces.py)."""

from __future__ import annotations

from starlette.responses import Response

from ...engine.traces import MAX_OBSERVATIONS, Observation, Trace
from ...services import Services
from ..http import encode
from ..kit.body import request_body
from . import wire
from .conversations import READ, WRITE, conversation_out, message_input, message_out
from .states import MAX_BODY
from .surface import Call, Route, route

NOT_FOUND = "Trace not found"


def _tree(roots: list[Observation]) -> list[bytes]:
    """The observations as JSON, each message with its `children`, assembled without recursion: a
    parent chain of any depth encodes (a nested dict passes the JSON encoder's depth limit near 500)."""
    parts, stack, first = [b"["], [iter(roots)], [True]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            first.pop()
            parts.append(b"]}" if stack else b"]")
            continue
        if not first[-1]:
            parts.append(b",")
        first[-1] = False
        parts.append(encode(message_out(node.message))[:-1] + b',"children":[')
        stack.append(iter(node.children))
        first.append(True)
    return parts


def trace_body(t: Trace) -> bytes:
    """The Conversation with `observations`: the tree of its messages."""
    return b"".join([encode(conversation_out(t.conversation))[:-1], b',"observations":', *_tree(t.observations),
                     b"}"])


def routes(svc: Services) -> list[Route]:
    traces = svc.traces

    async def ingest(call: Call) -> Response:
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        trace = wire.Fields(f.obj("trace", required=True))
        external_id = trace.string("external_id", 0, 1024)
        title = trace.string("title")
        metadata = trace.obj("metadata")
        items = f.array("observations", 1, MAX_OBSERVATIONS, required=True)
        observations = [message_input(item, default_role="assistant", require_observation_type=True)
                        for item in items]
        c = await traces.ingest(call.p.tenant, external_id=external_id, title=title, metadata=metadata,
                                observations=observations)
        return wire.json({"conversation": conversation_out(c), "observations": [message_out(m) for m in c.messages]},
                         201)

    async def list_(call: Call) -> Response:
        q = call.request.query_params
        order = wire.order_of(q.get("order"))
        limit = wire.lenient_limit(q.get("limit"), 50, 100)
        rows, nxt = await traces.list(call.p.tenant, limit=limit, cursor=wire.page_cursor(q.get("cursor"), order),
                                      order=order)
        return wire.json({"data": [conversation_out(c) for c in rows], "has_more": nxt is not None,
                          "next_cursor": None if nxt is None else wire.time_cursor(*nxt)})

    async def get(call: Call) -> Response:
        return wire.json(trace_body(await wire.or_not_found(traces.get(call.p.tenant, call.params[0]), NOT_FOUND)))

    # Before the conversation routes: `/conversations/traces` is a literal, not a conversation id (§4).
    return [
        route("POST", "/conversations/traces/ingest", WRITE, ingest, tokens=False),
        route("GET", "/conversations/traces", READ, list_, tokens=False),
        route("GET", "/conversations/traces/{id}", READ, get, tokens=False),
    ]
