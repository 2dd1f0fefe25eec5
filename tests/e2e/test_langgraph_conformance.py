"""StigmerSaver against `langgraph-checkpoint-conformance` (the official suite) and the real server process:
every base and extended capability, on the async face (an AsyncClient) and on the sync face (a Client, the
async methods then running it in a worker thread). The suite's report is printed."""

from __future__ import annotations

import pytest

pytest.importorskip("langgraph.checkpoint.conformance", reason="the `langgraph` extra is not installed")

from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import EXTENDED_CAPABILITIES  # noqa: E402
from langgraph.checkpoint.conformance.report import ProgressCallbacks  # noqa: E402

from stigmer.client import AsyncClient, Client  # noqa: E402
from stigmer.integrations.langgraph import StigmerSaver  # noqa: E402


async def check(registered, capsys):
    report = await validate(registered, progress=ProgressCallbacks.verbose())
    report.print_report()
    with capsys.disabled():  # the report is part of the test output, also without -s
        report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
    for cap in EXTENDED_CAPABILITIES:
        result = report.results[cap.value]
        assert result.detected and result.passed is True, (cap.value, failures)
    assert report.conformance_level() == "FULL"


async def test_async_face_passes_the_conformance_suite(shared_server, ns, capsys):
    @checkpointer_test(name="StigmerSaver (AsyncClient)")
    async def saver():
        async with AsyncClient(shared_server.url) as client:
            yield StigmerSaver(async_client=client, namespace=ns)

    await check(saver, capsys)


async def test_sync_face_passes_the_conformance_suite(shared_server, ns, capsys):
    @checkpointer_test(name="StigmerSaver (Client)")
    async def saver():
        with Client(shared_server.url) as client:
            yield StigmerSaver(client, namespace=ns)

    await check(saver, capsys)
