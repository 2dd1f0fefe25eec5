"""Ending open streams when the server stops, so SIGTERM takes milliseconds and logs no traceback.

A stream (SSE) waits in `receive()` for the client to go away; once shutdown begins this middleware
answers that wait with `http.disconnect`, which ends the stream exactly as a client leaving would
(generators run their `finally`). It then closes the chunked body, so clients see a clean end and
reconnect with Last-Event-ID. Requests still reading their body, such as writes, are left to finish.

Watch streams (`api/kit/sse.EventStream`) skip that wrapper: the middleware puts a `Wire` in the scope
(the server's own receive and send, and this Shutdown). Such a stream sends its head through the app,
then `adopt`s itself to the wire and returns, so every layer between here and the route unwinds and
frees what it held for the request; this middleware then runs the stream (`stream.run()`) in its own
frame. The stream holds itself here while it runs, and `begin()` tells each held stream to end. So a
stream costs no extra task and no middleware frames, closures or request objects.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DISCONNECT: Message = {"type": "http.disconnect"}
_APP_KEYS = ("state", "path_params", "stigmer.wire")


class Shutdown:
    """Set once when the server begins to stop; counts the streams still open."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.streams = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._held: set = set()  # streams that end themselves when told (`end()`)

    def begin(self) -> None:
        self.event.set()
        for stream in list(self._held):
            stream.end()

    def hold(self, stream: object) -> bool:
        """A stream with an `end()` method starts; False if shutdown has begun (it should end now)."""
        if self.event.is_set():
            return False
        self._held.add(stream)
        self._enter()
        return True

    def release(self, stream: object) -> None:
        if stream in self._held:
            self._held.discard(stream)
            self._leave()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def drained(self, timeout: float) -> bool:
        """Wait until every stream told to end has ended; False if `timeout` passes first."""
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
            return True
        except TimeoutError:
            return False

    def _enter(self) -> None:
        self.streams += 1
        self._drained.clear()

    def _leave(self) -> None:
        self.streams -= 1
        if self.streams == 0:
            self._drained.set()


class Wire:
    """What the server handed this request, before any middleware wrapped it; `adopted` is a stream
    the app handed back to be run once the app has returned."""

    __slots__ = ("receive", "send", "shutdown", "adopted")

    def __init__(self, receive: Receive, send: Send, shutdown: Shutdown):
        self.receive, self.send, self.shutdown = receive, send, shutdown
        self.adopted = None

    def adopt(self, stream: object) -> None:
        """Run `stream.run()` after the app returns (the response has started; the stream finishes it)."""
        self.adopted = stream


class EndStreamsOnShutdown:
    def __init__(self, app: ASGIApp, shutdown: Shutdown):
        self.app = app
        self.shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shutdown = self.shutdown
        wire = scope["stigmer.wire"] = Wire(receive, send, shutdown)
        try:
            await self._call(scope, receive, send)
        except BaseException:
            if wire.adopted is not None:  # the app failed after handing a stream over: let it go
                wire.adopted.abandon()
            raise
        stream, wire.adopted = wire.adopted, None
        if stream is not None:
            # The app is done with the request: drop what its layers kept in the scope for it (the
            # principal, route parameters), which uvicorn would otherwise hold as long as the stream.
            for name in _APP_KEYS:
                scope.pop(name, None)
            await stream.run()

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        shutdown = self.shutdown
        body_done = waiting = told = started = ended = False

        async def receive_(**_: object) -> Message:
            nonlocal body_done, waiting, told
            if not body_done:  # the body itself: never interrupted
                message = await receive()
                body_done = message["type"] == "http.disconnect" or not message.get("more_body", False)
                return message
            if not waiting:  # only a response that outlives its request waits here: a stream
                waiting = True
                shutdown._enter()
            if shutdown.is_set():
                told = True
                return _DISCONNECT
            got = asyncio.ensure_future(receive())
            stop = asyncio.ensure_future(shutdown.event.wait())
            try:
                await asyncio.wait((got, stop), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                if not got.done():
                    got.cancel()
            if got.done() and not got.cancelled():
                return got.result()
            told = True
            return _DISCONNECT

        async def send_(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        try:
            await self.app(scope, receive_, send_)
            if told and started and not ended:  # the stream was cut by us: finish the chunked body
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if waiting:
                shutdown._leave()
