"""Work that ends when its client leaves: a request that may wait long (a blocking acquire) is cancelled
as soon as the client disconnects, instead of finishing for nobody."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from starlette.types import Receive

from .body import ClientGone

T = TypeVar("T")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T:
    """`work`'s result; ClientGone, with `work` cancelled, when the client disconnects first. Call it
    once the request's body has been read: from then on `receive()` waits for the disconnect."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ClientGone()
    finally:
        gone.cancel()
        if not task.done():  # this coroutine itself was cancelled
            task.cancel()
