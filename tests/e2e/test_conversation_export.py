"""The NDJSON export of 10,000 conversations over a real server process streams: the server reads them
page by page while the client reads lines, and its memory stays bounded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from stigmer.engine.conversations import Conversations, MessageInput
from stigmer.store.sqlite import SQLiteStore

CONVERSATIONS = 10_000
CONTENT = 5_000  # characters per message, two messages each: about 100 MB of export in all
# What the server may have written ahead of the client is bounded by the socket buffers (here at most
# tcp_wmem 4 MiB + tcp_rmem 32 MiB) and one page of 100 conversations: far less than the export.
MAX_GROWTH = 40 * 1024 * 1024  # RSS the server may gain while streaming


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def fill(server) -> None:
    """The conversations, written through the engine into the server's own store before it starts (HTTP
    writes one at a time would take minutes on a busy machine); what is tested is the server's export."""
    url = server.env.get("STIGMER_DATABASE_URL")
    if url:
        from stigmer.store.postgres import PostgresStore
        store = PostgresStore(url)
    else:
        store = SQLiteStore(str(server.data_dir))
    await store.open()
    try:
        convs = Conversations(store)
        for start in range(0, CONVERSATIONS, 500):
            await asyncio.gather(*(convs.create("default", title=f"c{i}", messages=[
                MessageInput("user", f"{i} " + "q" * CONTENT), MessageInput("assistant", f"{i} " + "a" * CONTENT)])
                for i in range(start, start + 500)))
    finally:
        await store.close()


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
@pytest.mark.timeout(300)  # 100 MB written, then streamed: a minute on a busy machine, longer on PostgreSQL
def test_export_of_10000_conversations_streams_with_bounded_memory(make_server):
    server = make_server()
    asyncio.run(fill(server))
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        oldest = c.get("/v1/conversations", params={"order": "asc", "limit": "1"}).json()["conversations"][0]
        before = rss(server.proc.pid)
        peak, lines, size = before, 0, 0
        with c.stream("GET", "/v1/conversations:export") as r:
            assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
            seen = set()
            for line in r.iter_lines():
                conv = json.loads(line)
                if lines == 0:
                    # The export's last line is the oldest conversation; had the server read every row
                    # before its first line, deleting it now would not take it out of the stream.
                    assert c.delete(f"/v1/conversations/{oldest['id']}").status_code == 200
                lines += 1
                size += len(line) + 1
                seen.add(conv["id"])
                assert conv["message_count"] == len(conv["messages"]) == 2
                if lines % 250 == 0:
                    peak = max(peak, rss(server.proc.pid))
    assert lines == len(seen) == CONVERSATIONS - 1 and oldest["id"] not in seen
    assert size > 95 * 1024 * 1024
    assert peak - before < MAX_GROWTH, (before, peak)
