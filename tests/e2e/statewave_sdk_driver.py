"""Drive the real `statewave` SDK (PyPI statewave 1.5.0) for tests/e2e/test_statewave_sdk.py.

Runs in the SDK's own virtual environment (it never imports stigmer). Reads one JSON document on stdin:
`{"base_url", "api_key", "tenant_id", "async": bool, "calls": [[method, args, kwargs], ...]}`, makes the
calls in order on one `StatewaveClient` (or `AsyncStatewaveClient`), and prints one JSON list: for each
call `{"ok": <the result, models dumped as JSON>}` or `{"error": {"type", "status_code", "code",
"message", "details", "request_id"}}`.
"""

from __future__ import annotations

import asyncio
import json
import sys

from pydantic import BaseModel
from statewave import AsyncStatewaveClient, StatewaveClient
from statewave.exceptions import StatewaveAPIError, StatewaveError


def dump(value):
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


def failure(exc: Exception) -> dict:
    out = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, StatewaveAPIError):
        out |= {"status_code": exc.status_code, "code": exc.code, "message": exc.message, "details": exc.details,
                "request_id": exc.request_id}
    return out


async def run_async(doc: dict) -> list:
    out = []
    async with AsyncStatewaveClient(doc["base_url"], api_key=doc.get("api_key"), tenant_id=doc.get("tenant_id")) as c:
        for method, args, kwargs in doc["calls"]:
            try:
                out.append({"ok": dump(await getattr(c, method)(*args, **kwargs))})
            except (StatewaveError, TimeoutError) as exc:
                out.append({"error": failure(exc)})
    return out


def run_sync(doc: dict) -> list:
    out = []
    with StatewaveClient(doc["base_url"], api_key=doc.get("api_key"), tenant_id=doc.get("tenant_id")) as c:
        for method, args, kwargs in doc["calls"]:
            try:
                out.append({"ok": dump(getattr(c, method)(*args, **kwargs))})
            except (StatewaveError, TimeoutError) as exc:
                out.append({"error": failure(exc)})
    return out


if __name__ == "__main__":
    doc = json.load(sys.stdin)
    print(json.dumps(asyncio.run(run_async(doc)) if doc.get("async") else run_sync(doc)))
