"""StigmerSaver against `langgraph-checkpoint-conformance` (the official suite) and the real server process:
every base and extended capability, on the async face (an AsyncClient) and on the sync face (a Client, the
async methods then running it in a worker thread). The suite's report is printed."""

from __future__ import annotations

import contextlib
import io

import pytest

pytest.importorskip("langgraph.checkpoint.conformance", reason="the `langgraph` extra is not installed")

from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import EXTENDED_CAPABILITIES  # noqa: E402
from langgraph.checkpoint.conformance.report import ProgressCallbacks  # noqa: E402

from stigmer.client import AsyncClient, Client  # noqa: E402
from stigmer.integrations.langgraph import StigmerSaver  # noqa: E402


async def check(registered, record_property):
    report = await validate(registered, progress=ProgressCallbacks.verbose())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        report.print_report()
    print(printed.getvalue())  # in the test's captured output, and at the end of the run (conftest.py):
    record_property("printed_report", printed.getvalue())
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
    for cap in EXTENDED_CAPABILITIES:
        result = report.results[cap.value]
        assert result.detected and result.passed is True, (cap.value, failures)
    assert report.conformance_level() == "FULL"


async def test_async_face_passes_the_conformance_suite(shared_server, ns, record_property):
    @checkpointer_test(name="StigmerSaver (AsyncClient)")
    async def saver():
        async with AsyncClient(shared_server.url) as client:
            yield StigmerSaver(async_client=client, namespace=ns)

    await check(saver, record_property)


async def test_sync_face_passes_the_conformance_suite(shared_server, ns, record_property):
    @checkpointer_test(name="StigmerSaver (Client)")
    async def saver():
        with Client(shared_server.url) as client:
            yield StigmerSaver(client, namespace=ns)

    await check(saver, record_property)


# beyond the suite: values larger than one key holds, and concurrent writers on one thread

from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata  # noqa: E402,I001


def keys_left(client, ns):
    return [e.key for e in client.list(ns, values=False)]


async def test_values_larger_than_a_key_are_kept_in_parts(shared_server, ns):
    big, bigger = "x" * 3_000_000, {"rows": ["y" * 1000] * 1500}
    with Client(shared_server.url) as client:
        saver = StigmerSaver(client, namespace=ns)
        cp = generate_checkpoint(channel_values={"big": big, "small": 1}, channel_versions={"big": 1, "small": 1})
        first = saver.put(generate_config("t1"), cp, generate_metadata(step=0), {"big": 1, "small": 1})
        saver.put_writes(first, [("out", bigger), ("err", "e")], "task-1")
        saver.put_writes(first, [("out", bigger), ("err", "e")], "task-1")  # a repeat is not stored twice
        tup = saver.get_tuple(first)
        assert tup.checkpoint["channel_values"] == {"big": big, "small": 1}
        assert tup.pending_writes == [("task-1", "out", bigger), ("task-1", "err", "e")]
        assert {k.rsplit("/", 1)[0] for k in keys_left(client, ns) if k.startswith("p/")} == {
            "p/b/t1//big/1", "p/w/t1//" + first["configurable"]["checkpoint_id"] + "/task-1/0"}
        saver.copy_thread("t1", "t2")
        copied = saver.get_tuple(generate_config("t2"))
        assert copied.checkpoint["channel_values"]["big"] == big and copied.pending_writes == tup.pending_writes
        cp2 = generate_checkpoint(channel_values={"small": 2}, channel_versions={"small": 2})
        config = generate_config("t1")
        config["configurable"]["checkpoint_id"] = first["configurable"]["checkpoint_id"]
        saver.put(config, cp2, generate_metadata(step=1), {"small": 2})
        saver.prune(["t1"], strategy="keep_latest")  # the big value is no longer referenced: its parts go
        assert not any(k.startswith(("p/b/t1/", "p/w/t1/", "b/t1//big/")) for k in keys_left(client, ns))
        assert saver.get_tuple(generate_config("t1")).checkpoint["channel_values"] == {"small": 2}
        saver.delete_thread("t1")
        saver.delete_thread("t2")
        assert keys_left(client, ns) == []


async def test_concurrent_writers_on_one_thread(shared_server, ns):
    import asyncio

    async with AsyncClient(shared_server.url) as client:
        saver = StigmerSaver(async_client=client, namespace=ns)
        cps = [generate_checkpoint(channel_values={"n": i}, channel_versions={"n": saver.get_next_version(i, None)})
               for i in range(20)]
        stored = await asyncio.gather(*[
            saver.aput(generate_config("t"), cp, generate_metadata(step=i), cp["channel_versions"])
            for i, cp in enumerate(cps)])
        listed = [t async for t in saver.alist(generate_config("t"))]
        assert [t.checkpoint["id"] for t in listed] == sorted((cp["id"] for cp in cps), reverse=True)
        assert sorted(t.checkpoint["channel_values"]["n"] for t in listed) == list(range(20))
        target = stored[0]
        await asyncio.gather(*[saver.aput_writes(target, [("a", 1), ("b", 2)], "same-task") for _ in range(10)],
                             *[saver.aput_writes(target, [("c", i)], f"task-{i}") for i in range(10)])
        writes = (await saver.aget_tuple(target)).pending_writes
        assert sorted(w for w in writes if w[0] == "same-task") == [("same-task", "a", 1), ("same-task", "b", 2)]
        assert sorted(w[2] for w in writes if w[1] == "c") == list(range(10))


def test_list_across_namespaces_and_threads_and_by_id(shared_server, ns):
    with Client(shared_server.url) as client:
        saver = StigmerSaver(client, namespace=ns)
        made = {}
        for thread in ("a", "b"):
            for cns in ("", "child:1"):
                cp = generate_checkpoint()
                saver.put(generate_config(thread, checkpoint_ns=cns), cp, generate_metadata(source=thread), {})
                made[(thread, cns)] = cp["id"]
        every_ns = [(t.config["configurable"]["checkpoint_ns"], t.checkpoint["id"])
                    for t in saver.list({"configurable": {"thread_id": "a"}})]
        assert sorted(every_ns) == sorted([("", made[("a", "")]), ("child:1", made[("a", "child:1")])])
        assert len(list(saver.list(None))) == 4
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None, filter={"source": "b"})} == {"b"}
        assert len(list(saver.list(None, limit=3))) == 3
        one = generate_config("a", checkpoint_ns="child:1", checkpoint_id=made[("a", "child:1")])
        assert [t.checkpoint["id"] for t in saver.list(one)] == [made[("a", "child:1")]]
        assert list(saver.list(one, filter={"source": "b"})) == []
        assert list(saver.list(generate_config("a", checkpoint_id="no-such-id"))) == []
        with pytest.raises(ValueError):
            saver.prune(["a"], strategy="keep_some")
