"""Charging a request to the limiter: one bucket per credential, or per client IP without one; a surface
whose buckets are shared by the replicas brings its own (async) limiter."""

from __future__ import annotations

from ...support.ratelimit import RateLimiter
from .errors import Problem
from .surface import Surface


async def charge(limiter: RateLimiter, surface: Surface, key_id: str | None, ip: str,
                 ) -> tuple[list[tuple[bytes, bytes]], Problem | None]:
    """Take one token; return the headers to add to the response and, when the bucket is empty, the 429."""
    shared = key_id is None and surface.open_bucket
    limit = surface.rate_limit if key_id is not None or shared else surface.rate_limit_anon
    if limit <= 0:
        return [], None
    bucket = (f"{surface.name}:key:{key_id}" if key_id is not None else f"{surface.name}:open" if shared
              else f"{surface.name}:ip:{ip}")
    rate = surface.rate_per_second or None
    d = (await surface.limiter.ahit(bucket, limit, rate=rate) if surface.limiter is not None
         else limiter.hit(bucket, limit, rate=rate))
    headers = [(b"x-ratelimit-limit", b"%d" % d.limit), (b"x-ratelimit-remaining", b"%d" % d.remaining),
               (b"x-ratelimit-reset", b"%d" % d.reset)] if surface.limit_headers else []
    if d.allowed:
        return headers, None
    details = {"limit": d.limit, "remaining": 0, "reset": d.reset, "retry_after": d.retry_after,
               "keyed": key_id is not None}
    answer = {k.decode(): v.decode() for k, v in headers} | {"Retry-After": str(d.retry_after)}
    if surface.limit_headers:
        answer["x-ratelimit-remaining"] = "0"
    return headers, Problem(429, "rate_limited", "rate limit exceeded", details, answer)
