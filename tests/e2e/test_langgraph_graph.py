"""A real LangGraph StateGraph (plain Python nodes, no LLM) checkpointed in Stigmer: it stops at an
interrupt, the server is restarted on the same data, and a new process's saver resumes it to the end."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph.graph", reason="the `langgraph` extra is not installed")

from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from stigmer.client import AsyncClient, Client  # noqa: E402
from stigmer.integrations.langgraph import StigmerSaver  # noqa: E402


class State(TypedDict):
    steps: Annotated[list[str], operator.add]
    total: int
    approved: str


def build():
    def plan(state: State) -> dict:
        return {"steps": ["plan"], "total": state["total"] + 1}

    def review(state: State) -> dict:
        answer = interrupt({"question": "approve?", "total": state["total"]})
        return {"steps": [f"review:{answer}"], "approved": answer}

    def finish(state: State) -> dict:
        return {"steps": ["finish"], "total": state["total"] * 10}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("review", review)
    g.add_node("finish", finish)
    g.add_edge(START, "plan")
    g.add_edge("plan", "review")
    g.add_edge("review", "finish")
    g.add_edge("finish", END)
    return g


def test_a_graph_resumes_after_a_server_restart(server):
    config = {"configurable": {"thread_id": "order-7"}}
    with Client(server.url) as client:
        graph = build().compile(checkpointer=StigmerSaver(client))
        out = graph.invoke({"steps": [], "total": 1, "approved": ""}, config)
        assert out["steps"] == ["plan"] and out["total"] == 2
        [pending] = out["__interrupt__"]
        assert pending.value == {"question": "approve?", "total": 2}
        assert graph.get_state(config).next == ("review",)
    server.restart()  # same data directory (or database)
    with Client(server.url) as client:
        graph = build().compile(checkpointer=StigmerSaver(client))  # nothing kept in memory
        state = graph.get_state(config)
        assert state.next == ("review",) and state.values["total"] == 2
        assert state.tasks[0].interrupts[0].value == {"question": "approve?", "total": 2}
        out = graph.invoke(Command(resume="yes"), config)
        assert out == {"steps": ["plan", "review:yes", "finish"], "total": 20, "approved": "yes"}
        assert graph.get_state(config).next == ()
        history = list(graph.get_state_history(config))
        assert [h.metadata["step"] for h in history] == [3, 2, 1, 0, -1]  # newest first, every super-step
        assert history[-1].next == ("__start__",)
        # time travel: fork the thread at the checkpoint before the review, then answer again
        before_review = next(h for h in history if h.next == ("review",))
        fork = graph.update_state(before_review.config, {"total": 7})
        out = graph.invoke(None, fork)
        assert out["total"] == 7 and out["__interrupt__"][0].value == {"question": "approve?", "total": 7}
        out = graph.invoke(Command(resume="no"), config)
        assert out == {"steps": ["plan", "review:no", "finish"], "total": 70, "approved": "no"}
        assert len(list(graph.get_state_history(config))) == 8  # as with InMemorySaver


async def test_an_async_graph_resumes_after_a_server_kill(server):
    config = {"configurable": {"thread_id": "async-1"}}
    async with AsyncClient(server.url) as client:
        graph = build().compile(checkpointer=StigmerSaver(async_client=client))
        out = await graph.ainvoke({"steps": [], "total": 4, "approved": ""}, config)
        assert out["total"] == 5 and "__interrupt__" in out
    server.restart(graceful=False)  # kill -9: every acknowledged checkpoint was durable
    async with AsyncClient(server.url) as client:
        graph = build().compile(checkpointer=StigmerSaver(async_client=client))
        assert (await graph.aget_state(config)).next == ("review",)
        out = await graph.ainvoke(Command(resume="ok"), config)
        assert out == {"steps": ["plan", "review:ok", "finish"], "total": 50, "approved": "ok"}
        saver = StigmerSaver(async_client=client)
        assert [t async for t in saver.alist(config, limit=2)][0].checkpoint["channel_values"]["total"] == 50
        await saver.adelete_thread("async-1")
        assert await saver.aget_tuple(config) is None
