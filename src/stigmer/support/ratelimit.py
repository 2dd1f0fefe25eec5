"""Token-bucket rate limiting shared by the front doors, and the client-IP rule behind it.

A bucket holds `limit` tokens (the per-minute limit) and refills continuously at `limit / 60` tokens
per second. A limit of 0 means "no limiting" and is handled by the caller (no bucket, no headers).
The `RateLimiter` protocol is what a front door needs; `MemoryRateLimiter` keeps buckets in this
process (one server process owns them; a PostgreSQL or Redis backend can implement the same protocol
to share buckets between replicas).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import math
import threading
import time
from typing import Any, Callable, Iterable, NamedTuple, Protocol


class Decision(NamedTuple):
    allowed: bool
    limit: int  # per minute
    remaining: int  # floor of the tokens left after this request
    reset: int  # ceil of the epoch second at which the bucket is full again
    retry_after: int  # whole seconds until one token is available (0 when allowed)


class RateLimiter(Protocol):
    def hit(self, bucket: str, limit: int, cost: float = 1.0, rate: float | None = None) -> Decision:
        """Take `cost` tokens from `bucket` (capacity `limit` > 0, refilled at `rate` tokens per second,
        by default `limit` per minute) if it holds them."""

    def hit_minute(self, bucket: str, limit: int) -> Decision:
        """Count one request in `bucket`'s current UTC minute (a fixed window of at most `limit`)."""


class MemoryRateLimiter:
    """Buckets in a dict; full buckets are forgotten now and then so memory stays bounded."""

    def __init__(self, clock: Callable[[], float] = time.time, prune_every: int = 10_000):
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._windows: dict[str, tuple[int, int]] = {}  # name -> (minute, requests counted in it)
        self._lock = threading.Lock()
        self._hits = 0
        self._prune_every = prune_every

    def hit(self, bucket: str, limit: int, cost: float = 1.0, rate: float | None = None) -> Decision:
        now = self.clock()
        rate = rate or limit / 60.0
        with self._lock:
            tokens, at = self._buckets.get(bucket, (float(limit), now))
            tokens = min(float(limit), tokens + max(0.0, now - at) * rate)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[bucket] = (tokens, now)
            self._hits += 1
            if self._hits % self._prune_every == 0:
                self._prune(now)
        reset = math.ceil(now + (limit - tokens) / rate)
        retry = 0 if allowed else max(1, math.ceil((cost - tokens) / rate))
        return Decision(allowed, limit, max(0, math.floor(tokens)), reset, retry)

    def hit_minute(self, bucket: str, limit: int) -> Decision:
        now = self.clock()
        minute = int(now // 60)
        with self._lock:
            start, count = self._windows.get(bucket, (minute, 0))
            count = count + 1 if start == minute else 1
            self._windows[bucket] = (minute, count)
            self._hits += 1
            if self._hits % self._prune_every == 0:
                self._prune(now)
        end = (minute + 1) * 60
        allowed = count <= limit
        return Decision(allowed, limit, max(0, limit - count), end, 0 if allowed else max(1, math.ceil(end - now)))

    def _prune(self, now: float) -> None:
        for name, (tokens, at) in list(self._buckets.items()):
            if now - at > 3600:  # any bucket refills completely within a minute
                del self._buckets[name]
        minute = int(now // 60)
        for name, (start, _) in list(self._windows.items()):
            if start != minute:
                del self._windows[name]


class SharedRateLimiter:
    """Token buckets held by the store (`store.buckets` on PostgreSQL), so every replica charges the same
    bucket; `ahit` is `hit` over one database statement, on the database's clock."""

    def __init__(self, buckets: Any):
        self.buckets = buckets

    TIMEOUT = 2.0  # seconds; like StoreWindows, the limiter fails open rather than fail the request

    async def ahit(self, bucket: str, limit: int, cost: float = 1.0, rate: float | None = None) -> Decision:
        rate = rate or limit / 60.0
        try:
            async with asyncio.timeout(self.TIMEOUT):
                allowed, tokens, now = await self.buckets.take(bucket, limit, rate, cost)
        except Exception:  # the store erred or did not answer: never a 500 from the limiter
            return Decision(True, limit, limit, math.ceil(time.time()), 0)
        reset = math.ceil(now + (limit - tokens) / rate)
        retry = 0 if allowed else max(1, math.ceil((cost - tokens) / rate))
        return Decision(allowed, limit, max(0, math.floor(tokens)), reset, retry)


class SlidingLog:
    """A per-process sliding 60 s log of allowed requests per bucket (Statewave §6.11 `memory`): a request
    is denied when the log already holds `limit` entries (denied requests are not logged);
    `retry_after = floor(60 - (now - oldest)) + 1`."""

    WINDOW = 60.0

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._logs: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str, limit: int) -> Decision:
        now = self.clock()
        with self._lock:
            log = self._logs.setdefault(bucket, collections.deque())
            while log and now - log[0] >= self.WINDOW:
                log.popleft()
            if len(log) >= limit:
                return Decision(False, limit, 0, math.ceil(log[0] + self.WINDOW),
                                math.floor(self.WINDOW - (now - log[0])) + 1)
            log.append(now)
            if len(self._logs) > 10_000:  # forget idle buckets now and then
                for name in [n for n, q in self._logs.items() if not q or now - q[-1] >= self.WINDOW]:
                    del self._logs[name]
        return Decision(True, limit, limit - len(log), math.ceil(now + self.WINDOW), 0)


class StoreWindows:
    """A fixed window per UTC minute counted in the store (Statewave §6.11 `distributed`), so every
    process on one database shares it: denied when the count after the increment exceeds `limit`;
    `retry_after = max(1, 60 - seconds into the window)`. It fails open (allows) when the store errs or
    does not answer within TIMEOUT, and purges windows older than five minutes about once a minute."""

    PURGE_EVERY = 60.0
    KEEP = 300
    TIMEOUT = 2.0  # seconds: a limiter that waits longer than this is not worth the request's time

    def __init__(self, store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self._purged_at = float("-inf")

    async def hit(self, bucket: str, limit: int) -> Decision:
        now = self.clock()
        window = int(now // 60) * 60
        purge = None
        if now - self._purged_at >= self.PURGE_EVERY:
            self._purged_at, purge = now, window - self.KEEP
        try:
            async with asyncio.timeout(self.TIMEOUT):
                count = await self.store.rate_windows.hit(bucket, window, purge)
        except Exception:  # the limiter never takes the service down with the store (a timeout included)
            return Decision(True, limit, limit, window + 60, 0)
        if count > limit:
            return Decision(False, limit, 0, window + 60, max(1, 60 - int(now - window)))
        return Decision(True, limit, limit - count, window + 60, 0)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str | Iterable[str]) -> list[Network]:
    """`"10.0.0.1, 192.168.0.0/16"` -> networks; bad entries raise ValueError."""
    items = spec.split(",") if isinstance(spec, str) else spec
    return [ipaddress.ip_network(s.strip(), strict=False) for s in items if s.strip()]


def _trusted(addr: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The TCP peer, unless it is a trusted proxy: then the right-most untrusted X-Forwarded-For address."""
    peer = peer or "unknown"
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


__all__ = ["Decision", "RateLimiter", "MemoryRateLimiter", "SharedRateLimiter", "SlidingLog", "StoreWindows", "client_ip",
           "parse_networks"]
