"""Watch fan-out on the real server: streams fed straight from the hub, a stalled reader beside them.

Fast readers see every write once, in order; a reader that stops reading (its socket buffers fill, so
the server cannot write to it directly) is switched to buffering, then to catching up from history,
and when it reads again it gets every write once, in order. Nobody waits for it meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import socket

import httpx

WRITES = 300
PAD = "x" * 30_000  # big enough that the stalled reader's socket buffers fill (the kernel takes megabytes)


class Reader:
    def __init__(self, port: int, path: str):
        self.port, self.path = port, path
        self.revs: list[int] = []
        self.ids: list[int] = []

    async def open(self, rcvbuf: int | None = None, last_event_id: int | None = None) -> None:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        # A stalled reader's own buffer stays small too (asyncio stops reading the socket at 2 x limit).
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=1 << 16 if rcvbuf else 1 << 22)
        resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        self.writer.write(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{resume}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
        self.buf = b""
        opening = await self.frame()
        assert opening[0] == "retry: 3000" and (last_event_id is None or opening[1] == f"id: {last_event_id}")

    async def frame(self) -> list[str]:
        while b"\n\n" not in self.buf:
            size = int((await self.reader.readuntil(b"\r\n"))[:-2], 16)
            assert size > 0, "the stream ended"
            self.buf += (await self.reader.readexactly(size + 2))[:-2]
        raw, self.buf = self.buf.split(b"\n\n", 1)
        lines = raw.decode().split("\n")
        if lines[0].startswith("id: ") and len(lines) > 1 and lines[1] == "event: change":
            data = json.loads(lines[2][len("data: "):])
            self.revs.append(data["revision"])
            assert [c["value"]["s"] for c in data["changes"]] == [len(self.revs) - 1]
        return lines

    async def read_all(self, n: int) -> None:
        while len(self.revs) < n:
            await self.frame()

    def close(self) -> None:
        self.writer.close()


async def test_fast_readers_and_a_stalled_one_each_get_every_write_once_in_order(make_server):
    s = make_server(watch_buffer=4).start()
    path = "/v1/watch?namespace=fan&prefix=p"
    fast = [Reader(s.port, path) for _ in range(10)]
    stalled = Reader(s.port, path)
    await asyncio.gather(*(r.open() for r in fast))
    await stalled.open(rcvbuf=4096)
    readers = asyncio.gather(*(r.read_all(WRITES) for r in fast))
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        for i in range(WRITES):
            r = await c.put(f"/v1/kv/fan/p{i % 7}", json={"s": i, "pad": PAD})
            assert r.status_code in (200, 201)
    await asyncio.wait_for(readers, 30)  # the stalled reader held nobody up
    first = fast[0].revs[0]
    for r in fast:
        assert r.revs == list(range(first, first + WRITES))
    await asyncio.wait_for(stalled.read_all(WRITES), 30)
    assert stalled.revs == fast[0].revs
    for r in (*fast, stalled):
        r.close()


async def test_a_quiet_stream_keeps_alive_with_progress_ids_and_resumes_from_them(make_server):
    """On the real server (keep-alives written straight to the transport): the id moves with the tenant's
    other writes, and resuming from it delivers the next change of the quiet key, nothing twice."""
    s = make_server(sse_keepalive_seconds=0.2).start()
    quiet = Reader(s.port, "/v1/watch?namespace=fan&key=quiet")
    await quiet.open()
    async with httpx.AsyncClient(base_url=s.url, timeout=10) as c:
        for i in range(5):
            await c.put(f"/v1/kv/fan/p{i}", json={"s": i})
        seen = 0
        while seen != 5:
            lines = await asyncio.wait_for(quiet.frame(), 5)
            assert lines[0] == ": keep-alive" and lines[1].startswith("id: "), lines
            seen = int(lines[1][4:])
            assert seen <= 5
        quiet.close()
        again = Reader(s.port, "/v1/watch?namespace=fan&key=quiet")
        await again.open(last_event_id=seen)
        await c.put("/v1/kv/fan/quiet", json={"s": 0})
        await asyncio.wait_for(again.read_all(1), 5)
        assert again.revs == [6]
        again.close()
