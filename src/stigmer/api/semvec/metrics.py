"""`GET /metrics` (semvec §5.51): Prometheus text exposition behind HTTP Basic auth.

Kept minimal and exact, without a client library: a request counter by method, route template and status,
a duration histogram by method and route template (Prometheus' default buckets), and the stored-session
gauge. Figures are this process's (each replica exposes its own, as Prometheus expects); the gauge is
read from the store, so it is the same on every replica.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading

from starlette.requests import Request
from starlette.responses import Response

from ...services import Services
from . import wire

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else f"{x:.1f}"


class Metrics:
    def __init__(self, svc: Services):
        self.svc = svc
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._durations: dict[tuple[str, str], list] = {}  # -> [bucket counts..., sum, count]

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            k = (method, endpoint, str(status))
            self._requests[k] = self._requests.get(k, 0) + 1
            h = self._durations.setdefault((method, endpoint), [0] * len(BUCKETS) + [0.0, 0])
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def _refuse(self, request: Request) -> Response | None:
        s = self.svc.settings
        auth = request.headers.get("authorization")
        if auth is None or not auth[:6].lower() == "basic ":
            return wire.json({"detail": "Missing Basic Auth"}, 401)
        try:
            user, sep, password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return wire.json({"detail": "Invalid Basic Auth header"}, 401)
        if not sep:
            return wire.json({"detail": "Invalid Basic Auth header"}, 401)
        if not s.semvec_metrics_user or not s.semvec_metrics_password:
            return wire.json({"detail": "Metrics auth not configured"}, 503)
        ok = hmac.compare_digest(user.encode(), s.semvec_metrics_user.encode())
        ok &= hmac.compare_digest(password.encode(), s.semvec_metrics_password.encode())
        return None if ok else wire.json({"detail": "Invalid credentials"}, 401)

    async def endpoint(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(b'{"detail":"Method Not Allowed"}', 405, {"Allow": "GET"}, media_type="application/json")
        refused = self._refuse(request)
        if refused is not None:
            return refused
        active = await self.svc.sessions.count()
        return Response(self.exposition(active).encode(), 200, media_type=CONTENT_TYPE)

    def exposition(self, active_sessions: int) -> str:
        lines = ["# HELP semvec_requests_total Requests served, by method, route template and status.",
                 "# TYPE semvec_requests_total counter"]
        with self._lock:
            requests = sorted(self._requests.items())
            durations = sorted((k, list(v)) for k, v in self._durations.items())
        for (method, endpoint, status), n in requests:
            lines.append(f'semvec_requests_total{{method="{method}",endpoint="{_label(endpoint)}",status="{status}"}} {n}.0')
        lines += ["# HELP semvec_request_duration_seconds Request duration, by method and route template.",
                  "# TYPE semvec_request_duration_seconds histogram"]
        for (method, endpoint), h in durations:
            labels = f'method="{method}",endpoint="{_label(endpoint)}"'
            for b, count in zip(BUCKETS, h):
                lines.append(f'semvec_request_duration_seconds_bucket{{{labels},le="{_num(b)}"}} {count}.0')
            lines.append(f'semvec_request_duration_seconds_bucket{{{labels},le="+Inf"}} {h[-1]}.0')
            lines.append(f"semvec_request_duration_seconds_sum{{{labels}}} {h[-2]!r}")
            lines.append(f"semvec_request_duration_seconds_count{{{labels}}} {h[-1]}.0")
        lines += ["# HELP semvec_active_sessions Sessions stored on the server (all tenants).",
                  "# TYPE semvec_active_sessions gauge", f"semvec_active_sessions {active_sessions}.0"]
        return "\n".join(lines) + "\n"
