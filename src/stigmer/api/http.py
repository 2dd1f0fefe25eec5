"""Small HTTP helpers shared by the front doors: JSON responses and timestamps."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Mapping

import msgspec
from starlette.responses import Response

_encode = msgspec.json.Encoder().encode


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = content if isinstance(content, bytes) else _encode(content)
    return Response(body, status, headers, media_type="application/json")


_second_cache: dict[int, str] = {}
MAX_TIMESTAMP = 253_402_300_799.999  # 9999-12-31T23:59:59.999Z


def rfc3339(ts: float | None) -> str | None:
    """UTC, millisecond precision (truncated), `Z` suffix: 2026-04-01T09:30:00.125Z."""
    if ts is None:
        return None
    ts = min(ts, MAX_TIMESTAMP)  # an absurd stored time renders as the last representable millisecond
    # As datetime does: round the fraction to microseconds (half-even), then truncate to milliseconds.
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    second, frac = int(whole) + micros // 1_000_000, (micros % 1_000_000) // 1000
    prefix = _second_cache.get(second)
    if prefix is None:
        if len(_second_cache) > 4096:  # timestamps cluster around now; keep the cache small
            _second_cache.clear()
        prefix = _second_cache[second] = _dt.datetime.fromtimestamp(second, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{prefix}{frac:03d}Z"


encode = _encode
