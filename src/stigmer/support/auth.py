"""Who is asking: the tenant of a request. Open mode (no API keys yet) serves one default tenant."""

from __future__ import annotations

from starlette.requests import Request

DEFAULT_TENANT = "default"


def tenant_of(request: Request) -> str:
    return request.scope.get("state", {}).get("tenant", DEFAULT_TENANT)
