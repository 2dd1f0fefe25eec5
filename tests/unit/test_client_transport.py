"""Both clients over a scripted transport: watch resume after a drop mid-event, retries, errors."""

from __future__ import annotations

import httpx
import pytest

from stigmer.client import AsyncClient, Client, CompactedError, ConnectionFailedError, Retry, ServerError

FAST = Retry(retries=2, backoff=0.001, max_backoff=0.002)


def _change(rev: int) -> bytes:
    return (b'id: %d\nevent: change\ndata: {"revision":%d,"changes":[{"type":"put","namespace":"n","key":"k",'
            b'"value":%d,"version":1,"revision":%d,"ts":"2026-01-01T00:00:00.000Z"}]}\n\n') % (rev, rev, rev, rev)


class Script:
    """Each connection of the watch gets the next list of chunks; a chunk that is an exception is raised."""

    def __init__(self, connections):
        self.connections = list(connections)
        self.seen: list[httpx.Request] = []

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        chunks = self.connections.pop(0)
        if isinstance(chunks, httpx.Response):
            return chunks
        if isinstance(chunks, Exception):
            raise chunks
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream(chunks))


class Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        for c in self.chunks:
            if isinstance(c, Exception):
                raise c
            yield c

    async def __aiter__(self):
        for c in self.chunks:
            if isinstance(c, Exception):
                raise c
            yield c


def _script() -> Script:
    return Script([
        [b"retry: 3000\nid: 0\n\n", _change(1), _change(2)[:40], httpx.ReadError("dropped mid-event")],
        httpx.ConnectError("server down"),
        httpx.Response(503, json={"error": {"code": "unavailable", "message": "starting", "request_id": "x"}}),
        [b"retry: 3000\nid: 1\n\n", _change(2), b": keep-alive\n\n", _change(3)],  # server ends the stream
        [b"retry: 3000\nid: 3\n\n", _change(3), _change(4),
         b'event: compacted\nid: 9\ndata: {"oldest_revision":6,"current_revision":9}\n\n'],
    ])


def _check(script: Script, got: list[int]) -> None:
    assert got == [1, 2, 3, 4]
    assert [r.headers.get("last-event-id") for r in script.seen] == [None, "1", "1", "1", "3"]
    assert script.seen[0].url.params["from"] == "1" and "from" not in script.seen[1].url.params
    assert all(r.url.params["namespace"] == "n" for r in script.seen)


def test_sync_watch_resumes_without_loss_or_repeat():
    script = _script()
    got = []
    with Client("http://s", retry=FAST, transport=httpx.MockTransport(script.respond)) as c:
        with pytest.raises(CompactedError) as info:
            for cs in c.watch("n", from_revision=1):
                got.append(cs.revision)
    assert info.value.oldest_revision == 6
    _check(script, got)


async def test_async_watch_resumes_without_loss_or_repeat():
    script = _script()
    got = []

    async def handler(request):
        return script.respond(request)

    async with AsyncClient("http://s", retry=FAST, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(CompactedError):
            async for cs in c.watch("n", from_revision=1):
                got.append(cs.revision)
    _check(script, got)


def test_watch_gives_up_after_max_reconnects():
    script = Script([httpx.ConnectError("down")] * 3)
    retry = Retry(backoff=0.001, max_backoff=0.001, max_reconnects=2)
    with Client("http://s", retry=retry, transport=httpx.MockTransport(script.respond)) as c:
        with pytest.raises(ConnectionFailedError):
            next(iter(c.watch("n")))
    assert len(script.seen) == 3


def test_reads_are_retried_writes_are_not_resent():
    calls = []

    def handler(request):
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ReadError("reset")
        return httpx.Response(200, json={"revision": 4, "compacted_revision": 0})

    with Client("http://s", retry=FAST, transport=httpx.MockTransport(handler)) as c:
        assert c.revision().revision == 4
        assert calls == ["GET"] * 3
        calls.clear()
        with pytest.raises(ConnectionFailedError):
            c.put("n", "k", 1)
        assert calls == ["PUT"]


async def test_async_retries_on_503_then_raises():
    calls = []

    async def handler(request):
        calls.append(request.url.path)
        return httpx.Response(503, json={"error": {"code": "internal", "message": "busy", "request_id": "r"}})

    async with AsyncClient("http://s", retry=FAST, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ServerError) as info:
            await c.get("n", "a/b")
    assert info.value.status == 503 and calls == ["/v1/kv/n/a/b"] * 3
