"""SSE load client (one asyncio process, uvloop when available): watch fan-out and idle streams.

  python bench/sse.py fanout --port P --watchers N --rate M --seconds S
  python bench/sse.py idle   --port P --conns N --server-pid PID

fanout: N subscribers watch namespace `fan`, prefix `p`; a writer PUTs fan/p<seq%10> at M writes/s, each value
carrying its send time. Delivery latency = time a watcher parses the change - time the PUT was sent (so it
includes the durable commit). Every watcher must see every write exactly once: lost and duplicated events
are counted per watcher. idle: N streams opened and held; memory per stream = (server VmRSS with N open
streams - VmRSS before) / N. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

import msgspec

_decode = msgspec.json.decode


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


class Stream(asyncio.Protocol):
    """One SSE subscription over raw HTTP/1.1 (chunked body decoded by hand)."""

    def __init__(self, path: str, total: int, latencies: list[float] | None):
        self.path = path
        self.ready = asyncio.get_running_loop().create_future()
        self.head_done = False
        self.raw = b""
        self.sse = b""
        self.counts = bytearray(total) if total else None  # times each write's seq was seen
        self.latencies = latencies
        self.status = None
        self.closed = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n" % self.path.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the opening frame"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.raw += data
        if not self.head_done:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.raw[9:12])
            self.raw = self.raw[end + 4:]
            self.head_done = True
        # de-chunk
        while True:
            eol = self.raw.find(b"\r\n")
            if eol < 0:
                break
            size = int(self.raw[:eol], 16)
            if len(self.raw) < eol + 2 + size + 2:
                break
            self.sse += self.raw[eol + 2:eol + 2 + size]
            self.raw = self.raw[eol + 2 + size + 2:]
        while (end := self.sse.find(b"\n\n")) >= 0:
            frame, self.sse = self.sse[:end], self.sse[end + 2:]
            self.on_frame(frame, now)

    def on_frame(self, frame: bytes, now: float) -> None:
        if not self.ready.done():
            self.ready.set_result(None)  # the opening `retry:`/`id:` frame
        i = frame.find(b"\ndata: ")
        if i < 0 or b"event: change" not in frame:
            return
        for c in _decode(frame[i + 7:])["changes"]:
            v = c["value"]
            if self.counts is not None and isinstance(v, dict) and "s" in v:
                s = v["s"]
                if s < len(self.counts):
                    self.counts[s] = min(self.counts[s] + 1, 255)
                self.latencies.append(now - v["t"])


async def open_streams(port: int, path: str, n: int, total: int, latencies: list[float] | None,
                       batch: int = 250) -> list[Stream]:
    loop = asyncio.get_running_loop()
    streams: list[Stream] = []
    for start in range(0, n, batch):
        group = [Stream(path, total, latencies) for _ in range(min(batch, n - start))]
        await asyncio.gather(*(loop.create_connection(lambda s=s: s, "127.0.0.1", port) for s in group))
        await asyncio.wait_for(asyncio.gather(*(s.ready for s in group)), 60)
        streams.extend(group)
    return streams


async def put_loop(port: int, rate: float, total: int) -> list[float]:
    """PUT fan/p<seq%10> = {"s": seq, "t": send time} at `rate` per second on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    acks: list[float] = []
    t_start = time.monotonic()
    for seq in range(total):
        delay = t_start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        body = json.dumps({"s": seq, "t": time.time()}).encode()
        t0 = time.monotonic()
        writer.write(b"PUT /v1/kv/fan/p%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (seq % 10, len(body)) + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 20"):
            raise RuntimeError(head.decode())
        acks.append(time.monotonic() - t0)
    writer.close()
    return acks


async def fanout(port: int, watchers: int, rate: float, seconds: float, drain: float) -> dict:
    total = int(rate * seconds)
    latencies: list[float] = []
    t0 = time.monotonic()
    streams = await open_streams(port, "/v1/watch?namespace=fan&prefix=p", watchers, total, latencies)
    connect_s = time.monotonic() - t0
    acks = await put_loop(port, rate, total)
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and len(latencies) < total * watchers:
        await asyncio.sleep(0.1)
    lost = sum(s.counts.count(0) for s in streams)
    dup = sum(sum(c - 1 for c in s.counts if c > 1) for s in streams)
    dropped = sum(1 for s in streams if s.closed)
    for s in streams:
        s.transport.close()
    return {
        "watchers": watchers, "writes_per_s": rate, "writes": total, "expected_deliveries": total * watchers,
        "delivered": len(latencies), "lost": lost, "duplicated": dup, "streams_closed_early": dropped,
        "p50_ms": _ms(pct(latencies, 50)), "p99_ms": _ms(pct(latencies, 99)), "max_ms": _ms(max(latencies, default=None)),
        "put_ack_p50_ms": _ms(pct(acks, 50)), "put_ack_p99_ms": _ms(pct(acks, 99)), "connect_s": round(connect_s, 2),
    }


async def idle(port: int, conns: int, server_pid: int, settle: float) -> dict:
    await asyncio.sleep(0.5)
    before = rss_kib(server_pid)
    t0 = time.monotonic()
    streams = await open_streams(port, "/v1/watch?namespace=idle&prefix=x", conns, 0, None)
    connect_s = time.monotonic() - t0
    await asyncio.sleep(settle)
    after = rss_kib(server_pid)
    open_now = sum(1 for s in streams if not s.closed and s.status == 200)
    for s in streams:
        s.transport.close()
    return {"conns": conns, "open": open_now, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_conn": round((after - before) / conns, 2), "connect_s": round(connect_s, 2)}


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fanout")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--watchers", type=int, default=1000)
    f.add_argument("--rate", type=float, default=20)
    f.add_argument("--seconds", type=float, default=10)
    f.add_argument("--drain", type=float, default=15)
    i = sub.add_parser("idle")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--conns", type=int, default=1000)
    i.add_argument("--server-pid", type=int, required=True)
    i.add_argument("--settle", type=float, default=3)
    a = ap.parse_args()
    raise_nofile()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    if a.cmd == "fanout":
        out = asyncio.run(fanout(a.port, a.watchers, a.rate, a.seconds, a.drain))
    else:
        out = asyncio.run(idle(a.port, a.conns, a.server_pid, a.settle))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
