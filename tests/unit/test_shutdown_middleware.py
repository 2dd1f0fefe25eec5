"""EndStreamsOnShutdown: a stream's wait for the client ends at shutdown; a body being read does not."""

import asyncio

from stigmer.support.shutdown import EndStreamsOnShutdown, Shutdown

SCOPE = {"type": "http", "method": "GET", "path": "/"}


def channel(messages):
    queue = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)
    return queue.get


async def test_a_stream_is_told_the_client_left_and_its_body_is_closed():
    stop, sent, got = Shutdown(), [], []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        got.append(await receive())  # the request's (empty) body
        got.append(await receive())  # waits for the client to leave
        await send({"type": "http.response.body", "body": b"data", "more_body": True})

    async def send(m):
        sent.append(m)

    task = asyncio.create_task(EndStreamsOnShutdown(app, stop)(
        SCOPE, channel([{"type": "http.request", "body": b"", "more_body": False}]), send))
    while stop.streams == 0:
        await asyncio.sleep(0)
    stop.begin()
    await asyncio.wait_for(task, 1)
    assert got[1] == {"type": "http.disconnect"}
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert await stop.drained(0.1) and stop.streams == 0


async def test_a_body_being_read_is_not_interrupted():
    stop, bodies = Shutdown(), []
    more = asyncio.Event()

    async def receive_slowly(queue=[{"type": "http.request", "body": b"a", "more_body": True},
                                    {"type": "http.request", "body": b"b", "more_body": False}]):
        if len(queue) == 1:
            await more.wait()
        return queue.pop(0)

    async def app(scope, receive, send):
        while True:
            m = await receive()
            bodies.append(m.get("body"))
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(m):
        pass

    task = asyncio.create_task(EndStreamsOnShutdown(app, stop)(SCOPE, receive_slowly, send))
    while not bodies:
        await asyncio.sleep(0)
    stop.begin()
    more.set()
    await asyncio.wait_for(task, 1)
    assert bodies == [b"a", b"b"] and stop.streams == 0
