"""The doorbell: a coalesced NOTIFY after each commit, and a LISTEN that tells the feed another replica wrote.

A ring is a hint, never the data: the feed reads the changes table from its own position, and polls
`log.revisions` every tick, so a notification lost while a connection is down costs latency, not events.

- Sending: `ring(revs)` only records the newest revision per tenant; one task sends what accumulated,
  on its own connection and outside any writing transaction (NOTIFY inside it halves write
  throughput), then sends again if more came while it was in flight. One notification carries
  `tenant:rev` lines for several tenants, well under PostgreSQL's 8,000-byte payload limit.
- Listening: its own connection (not the pool's); when it drops it reconnects with backoff, logging
  once. Notifications this process sent are skipped: its commits reach the feed directly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import psycopg

log = logging.getLogger("stigmer.store")

CHANNEL = "stigmer_doorbell"
MAX_PAYLOAD = 4000  # bytes per notification; PostgreSQL's limit is 8,000
LISTEN_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)  # between reconnect attempts; the last repeats


def encode(revs: dict[str, int]) -> list[str]:
    """Payloads of `tenant:rev` lines, each at most MAX_PAYLOAD bytes."""
    payloads: list[str] = []
    lines: list[str] = []
    size = 0
    for tenant, rev in revs.items():
        line = f"{tenant}:{rev}"
        n = len(line.encode()) + 1
        if lines and size + n > MAX_PAYLOAD:
            payloads.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += n
    if lines:
        payloads.append("\n".join(lines))
    return payloads


def decode(payload: str) -> list[tuple[str, int]]:
    """The (tenant, rev) pairs of a payload; lines that do not parse are ignored."""
    rings = []
    for line in payload.split("\n"):
        tenant, sep, rev = line.rpartition(":")
        if sep and tenant and rev.isdigit() and rev.isascii():
            rings.append((tenant, int(rev)))
    return rings


class Doorbell:
    def __init__(self, connect: Callable[[str], Any], on_ring: Callable[[str, int], None]):
        self._connect = connect  # async: application name -> autocommit AsyncConnection
        self._on_ring = on_ring
        self._pending: dict[str, int] = {}
        self._sender: asyncio.Task | None = None
        self._send_conn: psycopg.AsyncConnection | None = None
        self._listen_conn: psycopg.AsyncConnection | None = None
        self._listener: asyncio.Task | None = None
        self._own_pid = 0  # the sending connection's backend
        self._send_failing = False
        self._closed = False
        self.listening = asyncio.Event()  # set while LISTEN is in force

    async def open(self) -> None:
        await self._listen_once_connected()
        self._listener = asyncio.create_task(self._listen(), name="stigmer-doorbell-listen")

    async def close(self) -> None:
        self._closed = True
        for task in (self._listener, self._sender):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        for conn in (self._send_conn, self._listen_conn):
            if conn is not None:
                await conn.close()

    # sending

    def ring(self, revs: dict[str, int]) -> None:
        """Called on the event loop after a local commit."""
        if self._closed:
            return
        pending = self._pending
        for tenant, rev in revs.items():
            if rev > pending.get(tenant, 0):
                pending[tenant] = rev
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="stigmer-doorbell-send")

    async def _send(self) -> None:
        while self._pending:
            revs, self._pending = self._pending, {}
            try:
                if self._send_conn is None or self._send_conn.closed or self._send_conn.broken:
                    self._send_conn = await self._connect("stigmer-doorbell")
                    self._own_pid = self._send_conn.info.backend_pid
                await self._send_conn.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                                              (CHANNEL, encode(revs)))
                if self._send_failing:
                    log.info("doorbell sending again")
                    self._send_failing = False
            except Exception as exc:  # lost rings are covered by the tick
                if not self._send_failing:
                    log.warning("doorbell not sent (%s); other replicas learn of commits by polling meanwhile",
                                _first_line(exc))
                    self._send_failing = True
                if self._send_conn is not None:
                    await self._send_conn.close()
                    self._send_conn = None
                return

    # listening

    async def _listen_once_connected(self) -> None:
        conn = await self._connect("stigmer-listen")
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            await conn.close()
            raise
        self._listen_conn = conn
        self.listening.set()

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                if self._listen_conn is None:
                    await self._listen_once_connected()
                    if failures:
                        log.info("doorbell listening again")
                    failures = 0
                async for note in self._listen_conn.notifies():  # type: ignore[union-attr]
                    if note.pid == self._own_pid:
                        continue
                    for tenant, rev in decode(note.payload):
                        try:
                            self._on_ring(tenant, rev)
                        except Exception:
                            log.exception("doorbell listener failed")
                raise psycopg.OperationalError("the notification stream ended")
            except Exception as exc:
                self.listening.clear()
                if self._listen_conn is not None:
                    await self._listen_conn.close()
                    self._listen_conn = None
                if not failures:
                    log.warning("doorbell connection lost (%s); reconnecting, polling meanwhile", _first_line(exc))
                await asyncio.sleep(LISTEN_DELAYS[min(failures, len(LISTEN_DELAYS) - 1)])
                failures += 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
