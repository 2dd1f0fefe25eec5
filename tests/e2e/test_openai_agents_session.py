"""StigmerSession with the real `openai-agents` package against the real server process: the Session
protocol's four operations, and agent turns run by `Runner` on a local model written here (no network)."""

from __future__ import annotations

import json

import pytest

agents = pytest.importorskip("agents")  # the `openai-agents` extra (in `dev`, so `make test` has it)

from agents import Agent, Runner, RunConfig, function_tool, set_tracing_disabled  # noqa: E402
from agents.items import ModelResponse  # noqa: E402
from agents.memory import Session, SessionSettings  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.usage import Usage  # noqa: E402
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText  # noqa: E402

from stigmer.client import AsyncClient, Client  # noqa: E402
from stigmer.integrations.openai_agents import ITEM, StigmerSession  # noqa: E402

set_tracing_disabled(True)  # nothing is sent anywhere

ITEMS = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer briefly."}]},
    {"type": "message", "role": "system", "content": "You are a helpful agent."},
    {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "get_weather",
     "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21.5 °C"},
    {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "It is sunny."}]},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Sunny, 21.5 °C.", "annotations": [], "logprobs": None}]},
    {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": ""}],
     "z_last": {"b": 1.5, "a": [2**53, -0.0, None, True, "é\u2028"]}},
]


@pytest.fixture
async def client(shared_server):
    async with AsyncClient(shared_server.url) as c:
        yield c


@pytest.fixture
def sync_client(shared_server):
    with Client(shared_server.url) as c:
        yield c


@pytest.fixture
def session_id(ns):
    return "agents-" + ns


async def test_it_is_a_session(client, session_id):
    session = StigmerSession(session_id, client=client)
    assert isinstance(session, Session) and session.session_id == session_id
    assert session.session_settings == SessionSettings()
    assert await session.get_items() == [] and await session.pop_item() is None
    await session.clear_session()  # nothing to clear: no conversation is made
    assert await session.conversation_id() is None


async def test_items_of_every_type_round_trip_exactly_and_in_order(client, sync_client, session_id):
    session = StigmerSession(session_id, client=client, title="weather", tags=["agents"])
    await session.add_items(ITEMS[:3])
    await session.add_items(ITEMS[3:])
    got = await session.get_items()
    assert got == ITEMS
    assert [json.dumps(i) for i in got] == [json.dumps(i) for i in ITEMS]  # member order kept too
    stored = sync_client.get_conversation_by_external_id(session_id)
    assert (stored.title, stored.tags, stored.message_count) == ("weather", ["agents"], len(ITEMS))
    assert [(m.role, m.content) for m in stored.messages] == [
        ("user", "What is the weather in Paris?"), ("system", "Answer briefly."), ("system", "You are a helpful agent."),
        ("tool", 'get_weather({"city":"Paris"})'), ("tool", "sunny, 21.5 °C"), ("tool", "It is sunny."),
        ("assistant", "Sunny, 21.5 °C."), ("tool", json.dumps(ITEMS[7], ensure_ascii=False, separators=(",", ":")))]
    assert all(m.metadata == {ITEM: item} for m, item in zip(stored.messages, ITEMS))


async def test_limit_gives_the_latest_items_oldest_first(client, session_id):
    items = [{"role": "user", "content": f"turn {i}"} for i in range(2500)]
    session = StigmerSession(session_id, client=client, session_settings={"limit": 3})
    await session.add_items(items)  # three requests of at most 1000
    assert await session.get_items() == items[-3:]  # the settings' default limit
    assert await session.get_items(limit=1) == items[-1:]
    assert await session.get_items(limit=1500) == items[-1500:]
    assert await session.get_items(limit=5000) == items
    assert await session.get_items(limit=0) == []
    assert await StigmerSession(session_id, client=client).get_items() == items


async def test_pop_and_clear(client, session_id):
    session = StigmerSession(session_id, client=client)
    await session.add_items(ITEMS[:4])
    assert await session.pop_item() == ITEMS[3]
    assert await session.pop_item() == ITEMS[2]
    assert await session.get_items() == ITEMS[:2]
    await session.add_items([ITEMS[6]])
    assert await session.get_items() == [ITEMS[0], ITEMS[1], ITEMS[6]]
    await session.clear_session()
    assert await session.get_items() == [] and await session.pop_item() is None
    await session.add_items([ITEMS[0]])  # the same conversation goes on
    assert await session.get_items() == [ITEMS[0]]


async def test_two_sessions_are_isolated(client, session_id):
    a, b = StigmerSession(session_id + "-a", client=client), StigmerSession(session_id + "-b", client=client)
    await a.add_items(ITEMS[:2])
    await b.add_items(ITEMS[2:3])
    assert await a.get_items() == ITEMS[:2] and await b.get_items() == ITEMS[2:3]
    await a.clear_session()
    assert await b.pop_item() == ITEMS[2]
    assert await a.get_items() == [] and await b.get_items() == []
    assert await a.conversation_id() != await b.conversation_id()


async def test_two_handles_on_one_session_share_it_and_survive_a_delete(client, sync_client, session_id):
    first, second = StigmerSession(session_id, client=client), StigmerSession(session_id, client=client)
    await first.add_items([ITEMS[0]])
    await second.add_items([ITEMS[1]])
    assert await first.get_items() == await second.get_items() == ITEMS[:2]
    sync_client.delete_conversation(await first.conversation_id())  # removed behind the handles' backs
    assert await first.get_items() == []
    await second.add_items([ITEMS[2]])  # a new conversation under the same session id
    assert await first.get_items() == [ITEMS[2]]


async def test_a_message_not_written_by_a_session_reads_as_role_and_content(client, sync_client, session_id):
    sync_client.create_conversation(external_id=session_id, messages=[
        {"role": "user", "content": "hi"}, {"role": "tool", "content": "42"}])
    assert await StigmerSession(session_id, client=client).get_items() == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "42"}]


class ScriptedModel(Model):
    """A local model: answers each call with the next scripted output and records the input it saw."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.inputs = []

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, *, previous_response_id=None, conversation_id=None, prompt=None, **_):
        self.inputs.append(json.loads(json.dumps(input, default=str)))
        return ModelResponse(output=[self.outputs.pop(0)], usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


def say(text, n):
    return ResponseOutputMessage(id=f"msg_{n}", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def texts(items):
    return [(i.get("role") or i.get("type"), i.get("content") if isinstance(i.get("content"), str) else
             "".join(p.get("text", "") for p in i.get("content") or []) or i.get("output") or i.get("name"))
            for i in items]


async def test_runner_stores_and_replays_history(client, session_id):
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = ScriptedModel([
        say("Hello!", 1),
        ResponseFunctionToolCall(id="fc_1", type="function_call", call_id="call_1", name="add",
                                 arguments='{"a": 2, "b": 3}', status="completed"),
        say("2 + 3 = 5", 2)])
    agent = Agent(name="calc", instructions="Be brief.", model=model, tools=[add])
    session = StigmerSession(session_id, client=client)
    config = RunConfig(tracing_disabled=True)
    first = await Runner.run(agent, "Hi", session=session, run_config=config)
    assert first.final_output == "Hello!"
    second = await Runner.run(agent, "What is 2 + 3?", session=session, run_config=config)
    assert second.final_output == "2 + 3 = 5"
    assert texts(model.inputs[0]) == [("user", "Hi")]
    assert texts(model.inputs[1]) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "What is 2 + 3?")]
    history = await session.get_items()
    assert texts(history) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "What is 2 + 3?"),
                              ("function_call", "add"), ("function_call_output", "5"), ("assistant", "2 + 3 = 5")]
    assert model.inputs[2] == json.loads(json.dumps(history[:5]))  # the tool turn replayed what was stored
    again = StigmerSession(session_id, client=client)  # a fresh handle, as another process would have
    assert await again.get_items() == history
