"""`StateVector`: the statevec protocol client (specs/statevec.md §9), call-compatible with PyPI `statevec`.

    from stigmer.client import StateVector
    sv = StateVector(url="http://127.0.0.1:7474")
    h = sv.put("project:task42:Xb8...", {"status": "running"})
    sv.get(h)  # -> {"status": "running"}

Code written for `from statevec import StateVector` ports by changing only the import.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Callable

import httpx

DEFAULT_URL = "http://localhost:8080"
BATCH_CHUNK = 20
MAX_RETRIES = 3


class StateVecError(Exception):
    """An error answer of the server: `.status`, `.error` (the server's message) and `.body`."""

    def __init__(self, status: int, error: str, body: Any = None):
        super().__init__(f"{status}: {error}")
        self.status, self.error, self.body = status, error, body


class BadRequest(StateVecError):
    pass


class Conflict(StateVecError):
    pass


class ValueTooLarge(StateVecError):
    pass


class RateLimited(StateVecError):
    def __init__(self, status: int, error: str, body: Any = None, retry_after: float = 1.0):
        super().__init__(status, error, body)
        self.retry_after = retry_after


_CLASSES = {400: BadRequest, 409: Conflict, 413: ValueTooLarge}


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(0.0, float(resp.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _error(resp: httpx.Response) -> StateVecError:
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    message = body.get("error", resp.reason_phrase) if isinstance(body, dict) else str(body)
    if resp.status_code == 429:
        return RateLimited(429, message, body, _retry_after(resp))
    return _CLASSES.get(resp.status_code, StateVecError)(resp.status_code, message, body)


class StateVector:
    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        headers = {"x-statevec-key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "StateVector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def hash(secret: str) -> str:
        """The address of a secret: lowercase hex SHA-256 of its UTF-8 bytes (no request)."""
        return hashlib.sha256(secret.encode("utf-8")).hexdigest()

    # --- transport

    def _send(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              ok: tuple[int, ...] = (200,)) -> httpx.Response:
        """One request; on 429 sleep Retry-After and retry (up to 3 times: limited requests were not executed).
        Network errors are raised as they are, never retried here (a PATCH may have been applied)."""
        for attempt in range(MAX_RETRIES + 1):
            resp = self._http.request(method, path, json=body, headers=headers)
            if resp.status_code == 429 and attempt < MAX_RETRIES:
                time.sleep(_retry_after(resp))
                continue
            if resp.status_code in ok:
                return resp
            raise _error(resp)
        raise AssertionError("unreachable")

    @staticmethod
    def _body(secret: str, **members: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"key": secret}
        body.update({k: v for k, v in members.items() if v is not None})
        return body

    # --- operations

    def put(self, secret: str, value: Any, ttl: int | None = None) -> str:
        body = {"key": secret, "val": value}
        if ttl is not None:
            body["ttl"] = ttl
        return self._send("PUT", "/v", body).json()["hash"]

    def get(self, hash: str) -> Any:
        resp = self._send("GET", f"/v/{hash}", ok=(200, 404))
        return None if resp.status_code == 404 else resp.json()["val"]

    def incr(self, secret: str, field: str | None = None, amount: int | float = 1, ttl: int | None = None) -> Any:
        return self._patch(self._body(secret, op="incr", field=field, amount=amount, ttl=ttl))

    def merge(self, secret: str, value: dict, deep: bool = False, ttl: int | None = None) -> Any:
        body = self._body(secret, op="merge", ttl=ttl)
        body["val"] = value
        if deep:
            body["deep"] = True
        return self._patch(body)

    def append(self, secret: str, value: Any, max: int | None = None, ttl: int | None = None) -> Any:
        body = self._body(secret, op="append", max=max, ttl=ttl)
        body["val"] = value
        return self._patch(body)

    def _patch(self, body: dict[str, Any]) -> Any:
        return self._send("PATCH", "/v", body).json()["val"]

    def delete(self, secret: str) -> bool:
        return self._send("DELETE", "/v", {"key": secret}, ok=(200, 404)).status_code == 200

    def batch(self, hashes: list[str]) -> list[dict[str, Any] | None]:
        """Entries `{"val", "ts"}` or None, in order; any number of hashes, sent in chunks of 20."""
        out: list[dict[str, Any] | None] = []
        for i in range(0, len(hashes), BATCH_CHUNK):
            out += self._send("POST", "/v/batch", {"hashes": hashes[i:i + BATCH_CHUNK]}).json()["results"]
        return out

    def watch(self, hash: str, callback: Callable[[Any], Any], interval: float = 2.0,
              stop: threading.Event | None = None) -> None:
        """Poll with If-None-Match until `stop` is set or `callback` returns exactly False.

        Calls `callback(val)` for the first value seen and for every new ETag, and `callback(None)` once
        when a seen entry disappears (delete or expiry). Values between two polls may be coalesced."""
        stop = stop or threading.Event()
        etag: str | None = None
        seen = False
        backoff = interval
        while not stop.is_set():
            headers = {"If-None-Match": etag} if etag else None
            try:
                resp = self._http.get(f"/v/{hash}", headers=headers)
            except httpx.TransportError:
                stop.wait(backoff)
                backoff = min(30.0, max(backoff * 2, interval))
                continue
            backoff = interval
            wait = interval
            if resp.status_code == 200:
                new = resp.headers.get("etag")
                if new != etag or not seen:
                    etag, seen = new, True
                    if callback(resp.json()["val"]) is False:
                        return
            elif resp.status_code == 404:
                if seen:
                    seen, etag = False, None
                    if callback(None) is False:
                        return
            elif resp.status_code == 429:
                wait = max(interval, _retry_after(resp))
            elif resp.status_code != 304:
                raise _error(resp)
            stop.wait(wait)


__all__ = ["StateVector", "StateVecError", "BadRequest", "Conflict", "ValueTooLarge", "RateLimited"]
