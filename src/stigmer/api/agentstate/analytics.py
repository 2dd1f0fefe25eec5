"""AgentState analytics (specs/agentstate.md §5.10, D25, D27), over the analytics engine (engine/analytics.py).

Every query parameter is lenient: `start`/`end` that are not a finite number > 0 are ignored (a fraction
narrows to the whole milliseconds inside it: start rounds up, end down; beyond 2^53 - 1 is 2^53 - 1), an
unknown `metric` or `granularity` is the default, `limit` as §3.6 says. `tag` repeats; all must be carried.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from starlette.responses import Response

from ...engine.analytics import GRANULARITIES, MAX_TAG_ROWS, METRICS
from ...services import Services
from . import wire
from .surface import Call, Route, route

SCOPE = "analytics:read"
_NUMBER = re.compile(r"\s*\+?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


def _ms(raw: str | None, rounding) -> int | None:
    if raw is None or not _NUMBER.fullmatch(raw):
        return None
    n = float(raw)
    if not (math.isfinite(n) and n > 0):
        return None
    return min(rounding(n), wire.MAX_SAFE)


def _number(d: Decimal) -> int | float:
    """An average as JSON writes it: `2` when whole, else `1.5`."""
    return int(d) if d == d.to_integral_value() else float(d)


def routes(svc: Services) -> list[Route]:
    analytics = svc.analytics

    def period(call: Call) -> dict:
        q = call.request.query_params
        return {"start": _ms(q.get("start"), math.ceil), "end": _ms(q.get("end"), math.floor)}

    async def summary(call: Call) -> Response:
        s = await analytics.summary(call.p.tenant, tags=call.request.query_params.getlist("tag"), **period(call))
        return wire.json({"total_conversations": s.total_conversations, "total_messages": s.total_messages,
                          "total_tokens": s.total_tokens,
                          "avg_messages_per_conversation": _number(s.avg_messages_per_conversation),
                          "avg_tokens_per_conversation": _number(s.avg_tokens_per_conversation),
                          "period": {"start": s.start, "end": s.end}})

    async def timeseries(call: Call) -> Response:
        q = call.request.query_params
        metric = q.get("metric") if q.get("metric") in METRICS else METRICS[0]
        granularity = q.get("granularity") if q.get("granularity") in GRANULARITIES else GRANULARITIES[0]
        s = await analytics.timeseries(call.p.tenant, metric=metric, granularity=granularity,
                                       tags=q.getlist("tag"), **period(call))
        return wire.json({"metric": s.metric, "granularity": s.granularity,
                          "period": {"start": s.start, "end": s.end},
                          "data": [{"bucket": p.bucket, "value": p.value} for p in s.data]})

    async def tags(call: Call) -> Response:
        limit = wire.lenient_limit(call.request.query_params.get("limit"), 50, MAX_TAG_ROWS)
        t = await analytics.tags(call.p.tenant, limit=limit, **period(call))
        return wire.json({"period": {"start": t.start, "end": t.end},
                          "data": [{"tag": f.tag, "conversation_count": f.conversation_count,
                                    "message_count": f.message_count, "token_count": f.token_count}
                                   for f in t.data]})

    return [
        route("GET", "/analytics/summary", SCOPE, summary, tokens=False),
        route("GET", "/analytics/timeseries", SCOPE, timeseries, tokens=False),
        route("GET", "/analytics/tags", SCOPE, tags, tokens=False),
    ]
