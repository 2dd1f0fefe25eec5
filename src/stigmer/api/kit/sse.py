"""Server-sent events for every surface: framing, the `retry:` hint, keep-alives, and the watch stream.

`id:` is the revision, so a client that reconnects with `Last-Event-ID` resumes exactly after the last
change set it saw. `EventStream` is the ASGI response of a watch: no task group and no generator per
stream. It waits in `receive()` (which tells it the client left) and is woken by cancelling that
wait; while it is parked and caught up, the hub hands it change sets straight from `publish`, and on
uvicorn's httptools protocol it writes the already-framed chunk to the transport itself, the same
bytes object for every stream of that format. Anything it cannot write at once is buffered by its
watcher and sent by the stream's own coroutine, through ASGI `send` (which honours flow control).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from starlette.responses import Response

from ...engine.changes import Watcher
from ...engine.errors import Compacted
from ...engine.types import ChangeSet

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keep-alive\n\n"
RETRY_MS = 3000
BATCH = 64  # change sets already waiting are sent in one write, up to this many
DIRECT_LIMIT = 65_536  # bytes queued in a transport beyond which the stream's coroutine takes over

_START_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
                  *((k.lower().encode(), v.encode()) for k, v in HEADERS.items())]


def frame(data: bytes, event_id: int | None = None, event: str | None = None, event_first: bool = False) -> bytes:
    """One event; the field order is the surface's (`event_first` for the CntrlNode spec's frames)."""
    id_line = b"id: %d\n" % event_id if event_id is not None else b""
    event_line = b"event: " + event.encode() + b"\n" if event is not None else b""
    head = event_line + id_line if event_first else id_line + event_line
    return head + b"data: " + data + b"\n\n"


def opening(revision: int) -> bytes:
    """The first bytes of a stream: the reconnect delay and the position it starts after."""
    return b"retry: %d\nid: %d\n\n" % (RETRY_MS, revision)


def progress(revision: int) -> bytes:
    """A keep-alive that also moves the client's last event id: everything up to `revision` that the
    stream's filter matches has been sent, so a client of a quiet key resumes from a recent revision."""
    return b": keep-alive\nid: %d\n\n" % revision


def once(data: bytes, headers: dict[str, str] | None = None) -> Response:
    """A stream that is over as soon as it starts (a `compacted` answer)."""
    return Response(data, media_type="text/event-stream", headers={**HEADERS, **(headers or {})})


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class Format:
    """One wire rendering of change sets; each change set keeps its bytes per format (`ChangeSet.encoded`),
    both as an SSE frame and as an HTTP chunk holding it."""

    __slots__ = ("render", "chunked", "_as_chunk")

    def __init__(self, render: Callable[[ChangeSet], bytes]):
        self.render = render
        self.chunked = object()  # the cache key of the chunk form
        self._as_chunk = lambda cs: _chunk(cs.encoded(self, render))

    def frame(self, cs: ChangeSet) -> bytes:
        return cs.encoded(self, self.render)

    def chunk(self, cs: ChangeSet) -> bytes:
        return cs.encoded(self.chunked, self._as_chunk)


class EventStream:
    """The ASGI response streaming one watcher. `keepalive_id` makes keep-alives carry the watcher's
    position (native surface); without it they are bare comments (CntrlNode's spec).

    Behind `support/shutdown.EndStreamsOnShutdown` (the real server) it sends its head through the app,
    then adopts itself to the server's `Wire` and returns, so the middleware and routing layers unwind
    and free what they held for the request; `run()` is then called from the outermost layer."""

    __slots__ = ("watcher", "fmt", "keepalive", "keepalive_id", "on_compacted", "on_close", "_receive",
                 "_send", "_shutdown", "_task", "_parked", "_woken", "_ending", "_cycle", "_transport",
                 "_wrote", "_due", "_clock")

    def __init__(self, watcher: Watcher, fmt: Format, keepalive: float, *, keepalive_id: bool = False,
                 on_compacted: Callable[[Compacted], bytes | None] | None = None,
                 on_close: Callable[[], None] | None = None):
        self.watcher = watcher
        self.fmt = fmt
        self.keepalive = keepalive
        self.keepalive_id = keepalive_id
        self.on_compacted = on_compacted
        self.on_close = on_close
        self._receive: Any = None
        self._send: Any = None
        self._shutdown: Any = None
        self._task: asyncio.Task | None = None
        self._parked = self._woken = self._ending = self._due = False
        self._cycle: Any = None  # uvicorn's request cycle, when its transport may be written directly
        self._transport: Any = None
        self._wrote = 0.0  # loop time of the last write
        self._clock: Callable[[], float] | None = None

    # called by the hub, the keep-alive pacer and shutdown (all on the event loop)

    def push(self, cs: ChangeSet) -> bool:
        # Inlined `_writable`: this runs once per stream per change set.
        cycle = self._cycle
        if (not self._parked or self._woken or cycle is None or cycle.disconnected or cycle.flow.write_paused
                or self._transport.get_write_buffer_size() >= DIRECT_LIMIT):
            return False
        self._transport.write(self.fmt.chunk(cs))
        self._wrote = self._clock()
        return True

    def push_run(self, sets: list[ChangeSet], i: int, shared: dict) -> bool:
        cycle = self._cycle
        if (not self._parked or self._woken or cycle is None or cycle.disconnected or cycle.flow.write_paused
                or self._transport.get_write_buffer_size() >= DIRECT_LIMIT):
            return False
        key = (self.fmt, i)  # streams of one format that stand at the same place share the bytes
        data = shared.get(key)
        if data is None:
            data = shared[key] = b"".join([self.fmt.chunk(cs) for cs in sets[i:]])
        self._transport.write(data)
        self._wrote = self._clock()
        return True

    def wake(self) -> None:
        if self._parked and not self._woken:
            self._woken = True
            self._task.cancel()

    def end(self) -> None:
        """Finish the stream cleanly (server shutdown): the client resumes with Last-Event-ID."""
        self._ending = True
        self.wake()

    def _writable(self) -> bool:
        cycle = self._cycle
        return (cycle is not None and not cycle.disconnected and not cycle.flow.write_paused
                and self._transport.get_write_buffer_size() < DIRECT_LIMIT)

    def _keepalive_bytes(self) -> bytes:
        return progress(self.watcher.position()) if self.keepalive_id else KEEPALIVE

    def _tick(self, now: float) -> None:
        if now - self._wrote < self.keepalive - 1e-3:
            return
        if self._parked and not self._woken and self._writable() and self.watcher.caught_up:
            self._transport.write(_chunk(self._keepalive_bytes()))
            self._wrote = now
        else:
            self._due = True  # the stream's coroutine sends it
            self.wake()

    # the stream itself

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        wire = scope.get("stigmer.wire")  # the server's own receive/send, ahead of every middleware
        if wire is not None:
            receive, self._shutdown = wire.receive, wire.shutdown
        body_send = wire.send if wire is not None else send
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _START_HEADERS})
            await body_send({"type": "http.response.body", "body": opening(self.watcher.last), "more_body": True})
        except BaseException:
            self._finish()
            raise
        self._receive, self._send = receive, body_send
        self._direct(scope, body_send)
        if wire is not None:
            wire.adopt(self)
            return
        await self.run()

    def _direct(self, scope: dict, send: Callable) -> None:
        """Write chunks to the transport ourselves only where we know the framing: uvicorn's httptools
        protocol, a chunked body, not a HEAD request."""
        cycle = getattr(send, "__self__", None)
        if (scope.get("method") != "HEAD" and getattr(cycle, "chunked_encoding", None) is True
                and hasattr(cycle, "flow") and hasattr(cycle, "disconnected") and cycle.transport is not None):
            self._cycle, self._transport = cycle, cycle.transport

    def abandon(self) -> None:
        """Adopted but never run (the app failed after handing it over)."""
        self._finish()

    def _finish(self) -> None:
        self.watcher.sink = None
        self.watcher.close()
        if self.on_close is not None:
            self.on_close()
            self.on_close = None

    async def run(self) -> None:
        w, send, shutdown = self.watcher, self._send, self._shutdown
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._clock = loop.time
        self._wrote = loop.time()
        w.sink = self
        pacer = _Pacer.of(loop)
        pacer.add(self)
        gone = False
        held = shutdown is None or shutdown.hold(self)
        try:
            while held:
                try:
                    out = self._take()
                except Compacted as exc:
                    tail = self.on_compacted(exc) if self.on_compacted else None
                    if tail:
                        await send({"type": "http.response.body", "body": tail, "more_body": True})
                    break
                except Exception:  # history could not be read: end; the client resumes where it was
                    break
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                    self._wrote, self._due = loop.time(), False
                    continue
                if w.closed or self._ending:
                    break
                if self._due:  # the pacer asked for a keep-alive
                    await send({"type": "http.response.body", "body": self._keepalive_bytes(), "more_body": True})
                    self._wrote, self._due = loop.time(), False
                    continue
                self._parked = True
                try:
                    message = await self._receive()
                except asyncio.CancelledError:
                    if not self._woken:
                        raise
                    self._task.uncancel()
                    continue
                finally:
                    self._parked = self._woken = False
                if message["type"] == "http.disconnect":
                    gone = True
                    break
        finally:
            pacer.discard(self)
            if held and shutdown is not None:
                shutdown.release(self)
            self._finish()
        if not gone:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _take(self) -> bytes:
        w = self.watcher
        cs = w.poll()
        if cs is None:
            return b""
        frames = [self.fmt.frame(cs)]
        try:
            while len(frames) < BATCH and (cs := w.poll()) is not None:
                frames.append(self.fmt.frame(cs))
        except Exception:  # raised again by the next call, after these frames are out
            pass
        return b"".join(frames)


class _Pacer:
    """One timer per event loop for every stream's keep-alive (a timer each would cost ~0.5 KiB a
    stream): every quarter of the shortest keep-alive interval it lets each stream check its silence.
    A keep-alive thus goes out between 1 and 1.25 intervals after the last write."""

    __slots__ = ("loop", "streams", "interval", "task")
    _by_loop: dict[asyncio.AbstractEventLoop, "_Pacer"] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.streams: set[EventStream] = set()
        self.interval = 3600.0
        self.task: asyncio.Task | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> "_Pacer":
        pacer = cls._by_loop.get(loop)
        if pacer is None:
            pacer = cls._by_loop[loop] = cls(loop)
        return pacer

    def add(self, stream: EventStream) -> None:
        self.streams.add(stream)
        if stream.keepalive / 4 < self.interval:
            self.interval = stream.keepalive / 4
            if self.task is not None:  # restart, so the new interval applies from now
                self.task.cancel()
                self.task = None
        if self.task is None:
            self.task = self.loop.create_task(self._run())

    def discard(self, stream: EventStream) -> None:
        self.streams.discard(stream)
        if not self.streams:
            if self.task is not None:
                self.task.cancel()
            self._by_loop.pop(self.loop, None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = self.loop.time()
            for stream in list(self.streams):
                stream._tick(now)
