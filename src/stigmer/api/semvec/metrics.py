"""semvec's series of `GET /metrics` (§5.51), recorded into the server-wide registry (support/metrics.py).

A request counter by method, route template and status, a duration histogram by method and route template
(Prometheus' default buckets), and the stored-session gauge. Figures are this process's (each replica
exposes its own, as Prometheus expects); the gauge is read from the store at scrape time, so it is the same
on every replica. The endpoint and its credential are api/metrics.py's.
"""

from __future__ import annotations

from ...services import Services
from ...support.metrics import DEFAULT_BUCKETS, RequestStats


class SemvecMetrics:
    def __init__(self, svc: Services):
        self.requests = RequestStats("semvec_requests", "semvec_request_duration_seconds", ("method", "endpoint"),
                                     DEFAULT_BUCKETS, "method, route template")
        svc.metrics.registry.register(self.requests)
        active = svc.metrics.gauge("semvec_active_sessions", "Sessions stored on the server (all tenants).")

        async def count_sessions() -> None:
            active.set(await svc.sessions.count())

        svc.metrics.on_scrape(count_sessions)

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.observe((method, endpoint), status, seconds)
