"""The AgentState surface's wire terms: its error envelope and codes, zod-style validation messages,
lenient query numbers, cursors and millisecond times (specs/agentstate.md §3.4–3.6).

Validation reports only the first failing check, members in the order each endpoint's table lists them,
with the spec's message templates; an optional member sent as JSON null counts as omitted (D17), except
members typed "any JSON value", where null is a value.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any, Awaitable, Iterable, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ...engine import errors as engine_errors
from ..http import encode
from ..kit.body import BodyTooLarge
from ..kit.errors import Problem, problem_of

CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
         413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE",
         507: "INSUFFICIENT_STORAGE"}
PADDED_SECONDS = 0.3  # 401s and scope-denied 403s take at least this long (D3: timing padding)
MAX_SAFE = 2**53 - 1
T = TypeVar("T")
_decoder = msgspec.json.Decoder()
_LEADING_INT = re.compile(r"\s*([+-]?[0-9]+)")

# engine error code -> (status, wire code, message); anything else by its status
ENGINE = {
    "lease_required": (409, "LEASE_REQUIRED", "Active lease requires lease_id"),
    "lease_mismatch": (409, "LEASE_CONFLICT", "lease_id does not match active lease"),
    "lease_conflict": (409, "LEASE_CONFLICT", "State already has an active lease"),
    "lease_expired": (409, "LEASE_EXPIRED", "Lease has expired"),
    "idempotency_conflict": (409, "IDEMPOTENCY_CONFLICT", "Idempotency-Key was already used for a different request"),
    "idempotency_in_progress": (409, "IDEMPOTENCY_IN_PROGRESS",
                                "A request with this Idempotency-Key is currently being processed; retry shortly"),
    "value_too_large": (413, "PAYLOAD_TOO_LARGE", "Request body too large"),
}


def fail(status: int, code: str, message: str, headers: dict[str, str] | None = None, padded: bool = False) -> Problem:
    return Problem(status, code, message, {"padded": True} if padded else None, headers)


def bad(message: str) -> Problem:
    return fail(400, "BAD_REQUEST", message)


def not_found(message: str = "Not found") -> Problem:
    return fail(404, "NOT_FOUND", message)


UNAUTHORIZED = ("UNAUTHORIZED", "Unauthorized")


async def or_not_found(awaitable: Awaitable[T], message: str) -> T:
    """The engine call's result; its NotFound as this surface's 404 with the spec's message."""
    try:
        return await awaitable
    except engine_errors.NotFound:
        raise not_found(message) from None


def problem(exc: Exception) -> Problem:
    """Any error in this surface's terms."""
    if isinstance(exc, Problem) and exc.code.isupper():
        return exc
    if isinstance(exc, engine_errors.EngineError) and exc.code in ENGINE:
        status, code, message = ENGINE[exc.code]
        return fail(status, code, message)
    if isinstance(exc, BodyTooLarge):
        return fail(413, "PAYLOAD_TOO_LARGE", "Request body too large")
    p = problem_of(exc)
    if p.status == 401:
        return fail(401, *UNAUTHORIZED, padded=True)
    if p.status == 404:
        return not_found()
    if p.status == 429:
        return fail(429, "RATE_LIMITED", p.message, p.headers)
    if p.status >= 500 and p.status not in (503, 507):
        return fail(500, "INTERNAL_ERROR", "Internal server error")
    return fail(p.status, CODES.get(p.status, "BAD_REQUEST" if p.status < 500 else "INTERNAL_ERROR"), p.message,
                {k: v for k, v in p.headers.items() if k.lower() in ("retry-after", "connection")})


class PaddedResponse(Response):
    """A response sent no sooner than PADDED_SECONDS after it was made."""

    async def __call__(self, scope, receive, send) -> None:
        await asyncio.sleep(PADDED_SECONDS)
        await super().__call__(scope, receive, send)


def render(request: Request, p: Problem) -> Response:
    p = problem(p)
    body = encode({"error": {"code": p.code, "message": p.message}})
    cls = PaddedResponse if p.details.get("padded") else Response
    return cls(body, p.status, p.headers, media_type="application/json")


def json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content if isinstance(content, bytes) else encode(content), status, headers,
                    media_type="application/json")


# --- bodies and validation


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def expected(t: str, v: Any) -> Problem:
    return bad(f"Expected {t}, received {type_name(v)}")


def parse_object(raw: bytes) -> dict:
    """A request body that must be a JSON object."""
    try:
        body = _decoder.decode(raw) if raw.strip() else None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError, ValueError):
        body = None
    if body is None:
        raise bad("Invalid JSON body")
    if not isinstance(body, dict):
        raise expected("object", body)
    return body


class Fields:
    """Typed reads of one request object's members, in the order the endpoint checks them."""

    __slots__ = ("body",)

    def __init__(self, body: dict):
        self.body = body

    def _get(self, name: str, required: bool) -> Any:
        """The member, or ABSENT for an optional one omitted or sent as null (D17)."""
        if name not in self.body:
            if required:
                raise bad("Required")
            return ABSENT
        v = self.body[name]
        return ABSENT if v is None and not required else v

    def string(self, name: str, lo: int = 0, hi: int | None = None, required: bool = False) -> str | None:
        v = self._get(name, required)
        return None if v is ABSENT else check_string(v, lo, hi)

    def integer(self, name: str, lo: int | None = None, hi: int | None = None, required: bool = False,
                positive: bool = False) -> int | None:
        v = self._get(name, required)
        return None if v is ABSENT else check_integer(v, lo, hi, positive)

    def obj(self, name: str, required: bool = False) -> dict | None:
        v = self._get(name, required)
        if v is ABSENT:
            return None
        if not isinstance(v, dict):
            raise expected("object", v)
        return v

    def array(self, name: str, lo: int = 0, hi: int | None = None, required: bool = False) -> list | None:
        v = self._get(name, required)
        if v is ABSENT:
            return None
        if not isinstance(v, list):
            raise expected("array", v)
        _length(len(v), lo, hi, "Array", "element")
        return v

    def enum(self, name: str, allowed: Iterable[str], required: bool = False) -> str | None:
        v = self._get(name, required)
        return None if v is ABSENT else check_enum(v, allowed)

    def present(self, name: str) -> bool:
        return name in self.body


ABSENT = object()


def _length(n: int, lo: int, hi: int | None, what: str, unit: str) -> None:
    if n < lo:
        raise bad(f"{what} must contain at least {lo} {unit}(s)")
    if hi is not None and n > hi:
        raise bad(f"{what} must contain at most {hi} {unit}(s)")


def check_string(v: Any, lo: int = 0, hi: int | None = None) -> str:
    if not isinstance(v, str):
        raise expected("string", v)
    _length(len(v), lo, hi, "String", "character")
    return v


def check_integer(v: Any, lo: int | None = None, hi: int | None = None, positive: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise expected("number", v)
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise bad("Expected integer, received float")
    v = int(v)
    if positive and v <= 0:
        raise bad("Number must be greater than 0")
    if lo is not None and v < lo:
        raise bad(f"Number must be greater than or equal to {lo}")
    if hi is not None and v > hi:
        raise bad(f"Number must be less than or equal to {hi}")
    return v


def check_enum(v: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(v, str):
        raise expected("string", v)
    if v not in allowed:
        listed = " | ".join(f"'{a}'" for a in allowed)
        raise bad(f"Invalid enum value. Expected {listed}, received '{v}'")
    return v


# --- query parameters, cursors, times


def lenient_limit(raw: str | None, default: int, most: int) -> int:
    """A leading base-10 integer; missing, non-numeric or < 1 -> default; > most -> most."""
    m = _LEADING_INT.match(raw) if raw is not None else None
    n = int(m.group(1)) if m else 0
    return default if n < 1 else min(n, most)


def positive_int(raw: str | None) -> int | None:
    """A positive integer query parameter, or None (absent or anything else: ignored)."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 16:
        return None
    n = int(raw)
    return n if 0 < n <= MAX_SAFE else None


def order_of(raw: str | None) -> str:
    return "asc" if raw == "asc" else "desc"


INVALID_CURSOR = "Cursor must be a valid positive number (Unix timestamp in milliseconds)"


def parse_time_cursor(raw: str | None) -> tuple[int, str | None] | None:
    """`<ms>.<id>` (or a bare `<ms>`) -> (ms, id); None when absent; INVALID_CURSOR otherwise."""
    if raw is None or raw == "":
        return None
    ms_text, dot, ident = raw.partition(".")
    try:
        ms = float(ms_text) if ms_text.strip() else math.nan
    except ValueError:
        ms = math.nan
    if not math.isfinite(ms) or not 0 <= ms <= MAX_SAFE or (dot and not ident):
        raise fail(400, "INVALID_CURSOR", INVALID_CURSOR)
    return int(ms), ident if dot else None


LAST_ID = "\U0010ffff"  # sorts after every id: a bare `<ms>` cursor of an ascending page skips that whole millisecond


def page_cursor(raw: str | None, order: str) -> tuple[int, str] | None:
    """A `(ms, id)` page position from a time cursor; a bare `<ms>` skips that whole millisecond."""
    parsed = parse_time_cursor(raw)
    if parsed is None:
        return None
    at, ident = parsed
    return at, ident if ident is not None else ("" if order == "desc" else LAST_ID)


def time_cursor(ms: int, ident: str) -> str:
    return f"{ms}.{ident}"


def ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))
