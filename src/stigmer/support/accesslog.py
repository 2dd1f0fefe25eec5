"""Request observation: every request counted in the metrics, and one access-log line on stderr (pure ASGI).

Text: `INFO:     GET /v1/kv/app/x?limit=5 200 1.2ms rid=...`. JSON (`log_format=json`): one object a line
with ts, level, logger, request_id, tenant, surface, route, method, path, status and duration_ms. Query
values of credentials are replaced by `***` in both, so keys passed in the URL never reach the log.

Lines are formatted here and written once per event-loop turn: going through `logging` cost about 12 µs a
request on the key hot path (a LogRecord, uvicorn's formatter and one write each), more than the key read
itself. The metrics and the log share one timing and one wrapped `send`.

The labels are bounded: the surface the edge chose (`state["surface"]`), and the route template: the one a
surface's own dispatcher or the key fast path names (`state["route"]`), else the Starlette route's. A
request that reached no route (an unknown path, or refused at the edge) is `route="(none)"`, and a method
outside the standard seven is `method="other"`. Scrapes of
`/metrics` are not counted (semvec §5.51 says so for its series; the server's follow it).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import Callable, TextIO
from urllib.parse import parse_qsl, quote

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import RequestStats

PREFIX = "INFO:     "  # the level prefix of the server's other lines
# Percent-encode the rest, so a path cannot forge log lines.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_UNSAFE = re.compile(r"[^A-Za-z0-9/:@!$&'()*+,;=\-._~]")
SECRET_PARAMS = frozenset({"apikey", "api_key", "access_token", "key", "token", "x-statevec-key"})
NO_ROUTE = "(none)"
METRICS_PATH = "/metrics"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is `other`


def redact_query(raw: bytes) -> str:
    if not raw:
        return ""
    parts = []
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        shown = "***" if name.lower() in SECRET_PARAMS else quote(value, safe="/:,*")
        parts.append(f"{quote(name, safe='')}={shown}")
    return "?" + "&".join(parts)


def shown_path(path: str) -> str:
    return quote(path, safe=_PATH_SAFE) if _UNSAFE.search(path) else path


def iso_now(t: float | None = None) -> str:
    """`t` (default now) in UTC with milliseconds, as every JSON line of the server spells `ts`."""
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def text_line(scope: Scope, route: str, status: int, seconds: float) -> str:
    return "%s%s %s%s %d %.1fms rid=%s\n" % (
        PREFIX, scope["method"], shown_path(scope["path"]), redact_query(scope["query_string"]), status,
        seconds * 1000, scope.get("state", {}).get("request_id", "-"))


_encode = msgspec.json.Encoder().encode


def json_line(scope: Scope, route: str, status: int, seconds: float) -> str:
    state = scope.get("state", {})
    principal = state.get("principal")
    return _encode({
        "ts": iso_now(), "level": "info", "logger": "stigmer.access", "request_id": state.get("request_id"),
        "tenant": principal.tenant if principal is not None else None, "surface": state.get("surface"),
        "route": route, "method": scope["method"], "path": scope["path"] + redact_query(scope["query_string"]),
        "status": status, "duration_ms": round(seconds * 1000, 3),
    }).decode() + "\n"


LINE_FORMATS: dict[str, Callable[[Scope, str, int, float], str]] = {"text": text_line, "json": json_line}


class LineSink:
    """Collects lines and writes them in one call at the end of the current loop turn."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self._lines.append(line)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        stream = self.stream or sys.stderr
        try:
            stream.write("".join(lines))
            stream.flush()
        except (OSError, ValueError):  # stderr closed or full: the log is not worth a failed request
            pass


class ObserveRequests:
    """Counts every request in `stats`; writes its access line to `sink` in `line_format` when a sink is given."""

    def __init__(self, app: ASGIApp, stats: RequestStats, sink: LineSink | None = None, line_format: str = "text"):
        self.app = app
        self.stats = stats
        self.sink = sink
        self.line = LINE_FORMATS[line_format]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_)
        except BaseException:
            status = status or 500
            raise
        finally:
            # status 0: the client left before any response started
            seconds = time.perf_counter() - start
            state = scope.get("state", {})
            route = state.get("route")
            if route is None:
                matched = scope.get("route")
                route = getattr(matched, "path", NO_ROUTE)
            if scope["path"] != METRICS_PATH:
                method = scope["method"]
                self.stats.observe((state.get("surface", "native"), route, method if method in METHODS else "other"),
                                   status, seconds)
            if self.sink is not None:
                self.sink.add(self.line(scope, route, status, seconds))
