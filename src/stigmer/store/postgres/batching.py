"""Point reads that arrive together share one statement (key reads, capability-token checks).

While `pool_size` statements are in flight, new reads wait and join the next one, so a busy replica pays one
round trip for many reads. A read always waits for a statement sent after it arrived, so it sees every commit
acknowledged before it (a revoked token, a written key).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable, Generic, Hashable, TypeVar

if TYPE_CHECKING:
    from .store import PostgresStore

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
MAX_BATCH = 128


class PointReads(Generic[K, V]):
    """`get(key)` through `read(keys) -> {key: value}` (a key it leaves out reads as None), batched."""

    def __init__(self, store: "PostgresStore", read: Callable[[list[K]], Awaitable[dict[K, V]]]):
        self._store = store
        self._read = read
        self._pending: list[tuple[K, asyncio.Future]] = []
        self._in_flight = 0
        self._kick_due = False
        self._tasks: set[asyncio.Task] = set()

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((key, future))
        if not self._kick_due and self._in_flight < self._store.pool_size:
            self._kick_due = True
            loop.call_soon(self._kick)  # after the other reads that start in this turn of the loop
        return await future

    async def drain(self) -> None:
        """Wait for the statements in flight (the store is closing)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _kick(self) -> None:
        self._kick_due = False
        while self._pending and self._in_flight < self._store.pool_size:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[K, asyncio.Future]]) -> None:
        try:
            found = await self._read(list(dict.fromkeys(k for k, _ in batch)))
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for key, future in batch:
                if not future.done():
                    future.set_result(found.get(key))
        finally:
            self._in_flight -= 1
            self._kick()
