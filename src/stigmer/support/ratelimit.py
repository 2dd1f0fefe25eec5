"""Token-bucket rate limiting shared by the front doors, and the client-IP rule behind it.

A bucket holds `limit` tokens (the per-minute limit) and refills continuously at `limit / 60` tokens
per second. A limit of 0 means "no limiting" and is handled by the caller (no bucket, no headers).
The `RateLimiter` protocol is what a front door needs; `MemoryRateLimiter` keeps buckets in this
process (one server process owns them; a PostgreSQL or Redis backend can implement the same protocol
to share buckets between replicas).
"""

from __future__ import annotations

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

    async def ahit(self, bucket: str, limit: int, cost: float = 1.0, rate: float | None = None) -> Decision:
        rate = rate or limit / 60.0
        allowed, tokens, now = await self.buckets.take(bucket, limit, rate, cost)
        reset = math.ceil(now + (limit - tokens) / rate)
        retry = 0 if allowed else max(1, math.ceil((cost - tokens) / rate))
        return Decision(allowed, limit, max(0, math.floor(tokens)), reset, retry)


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


__all__ = ["Decision", "RateLimiter", "MemoryRateLimiter", "SharedRateLimiter", "client_ip", "parse_networks"]
