"""Access log: one line per request on stderr (pure ASGI).

`INFO:     GET /v1/kv/app/x?limit=5 200 1.2ms rid=...`. Query values of credentials are replaced by
`***`, so keys passed in the URL never reach the log. Lines are formatted here and written once per
event-loop turn: going through `logging` cost about 12 µs a request on the key hot path (a LogRecord,
uvicorn's formatter and one write each), more than the key read itself.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import TextIO
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "INFO:     "  # the level prefix of the server's other lines
# Percent-encode the rest, so a path cannot forge log lines.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_UNSAFE = re.compile(r"[^A-Za-z0-9/:@!$&'()*+,;=\-._~]")
SECRET_PARAMS = frozenset({"apikey", "api_key", "access_token", "key", "token", "x-statevec-key"})


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


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, sink: LineSink | None = None):
        self.app = app
        self.sink = sink or LineSink()

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
            self.sink.add("%s%s %s%s %d %.1fms rid=%s\n" % (
                PREFIX, scope["method"], shown_path(scope["path"]), redact_query(scope["query_string"]), status,
                (time.perf_counter() - start) * 1000, scope.get("state", {}).get("request_id", "-")))
