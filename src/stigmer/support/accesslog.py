"""Access log: one line per request on logger `stigmer.access` (pure ASGI).

`GET /v1/kv/app/x?limit=5 200 1.2ms rid=...`. Query values of credentials are replaced by `***`, so
keys passed in the URL never reach the log.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("stigmer.access")

# Percent-encode the rest, so a path cannot forge log lines.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
SECRET_PARAMS = frozenset({"apikey", "api_key", "access_token", "key", "token", "x-statevec-key"})


def redact_query(raw: bytes) -> str:
    if not raw:
        return ""
    parts = []
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        shown = "***" if name.lower() in SECRET_PARAMS else quote(value, safe="/:,*")
        parts.append(f"{quote(name, safe='')}={shown}")
    return "?" + "&".join(parts)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        rid = b""

        async def send_(message: Message) -> None:
            nonlocal status, rid
            if message["type"] == "http.response.start":
                status = message["status"]
                rid = next((v for k, v in message.get("headers", ()) if k.lower() == b"x-request-id"), b"")
            await send(message)

        try:
            await self.app(scope, receive, send_)
        except BaseException:
            status = status or 500
            raise
        finally:
            ms = (time.perf_counter() - start) * 1000
            rid_s = rid.decode("latin-1") or scope.get("state", {}).get("request_id", "-")
            # status 0: the client left before any response started
            log.info("%s %s%s %d %.1fms rid=%s", scope["method"], quote(scope["path"], safe=_PATH_SAFE),
                     redact_query(scope["query_string"]),
                     status, ms, rid_s)


def add_access_log(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app (for the app assembly or the server)."""
    return AccessLogMiddleware(app)
