"""Server-sent events for every surface: framing, the `retry:` hint, keep-alives, and the watch loop.

`id:` is the revision, so a client that reconnects with `Last-Event-ID` resumes exactly after the last
change set it saw. Change sets already waiting are sent in one write (up to `BATCH`).
"""

from __future__ import annotations

from typing import AsyncIterator, Callable

from starlette.responses import StreamingResponse

from ...engine.changes import Watcher
from ...engine.types import ChangeSet
from ...engine.errors import Compacted

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keep-alive\n\n"
RETRY_MS = 3000
BATCH = 64


def frame(data: bytes, event_id: int | None = None, event: str | None = None, event_first: bool = False) -> bytes:
    """One event; the field order is the surface's (`event_first` for the CntrlNode spec's frames)."""
    id_line = b"id: %d\n" % event_id if event_id is not None else b""
    event_line = b"event: " + event.encode() + b"\n" if event is not None else b""
    head = event_line + id_line if event_first else id_line + event_line
    return head + b"data: " + data + b"\n\n"


def opening(revision: int) -> bytes:
    """The first bytes of a stream: the reconnect delay and the position it starts after."""
    return b"retry: %d\nid: %d\n\n" % (RETRY_MS, revision)


def response(body: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers={**HEADERS, **(headers or {})})


async def watch_events(watcher: Watcher, render: Callable[[ChangeSet], bytes], keepalive: float,
                       on_compacted: Callable[[Compacted], bytes | None],
                       on_close: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    """Stream a watcher: each change set rendered by `render`, keep-alives when idle; ends when the
    watcher is closed (server shutdown) or after `on_compacted`'s last words."""
    try:
        yield opening(watcher.last)
        while True:
            try:
                cs = await watcher.next(keepalive)
            except Compacted as exc:
                tail = on_compacted(exc)
                if tail:
                    yield tail
                return
            if cs is None:
                if watcher.closed:
                    return
                yield KEEPALIVE
                continue
            sets = [cs]
            while len(sets) < BATCH and (more := watcher.poll()) is not None:
                sets.append(more)
            yield b"".join(render(s) for s in sets)
    finally:
        watcher.close()
        if on_close is not None:
            on_close()
