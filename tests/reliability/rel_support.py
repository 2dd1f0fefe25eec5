"""Shared bits of the reliability harness: run size, the server process, credentials, the figures table."""

from __future__ import annotations

import collections
import os
import socket
import threading
from pathlib import Path
from typing import Any

import httpx

# --- size -----------------------------------------------------------------------------------------
# RELIABILITY=full (set by `make reliability`) runs everything at full size; anything else is the
# reduced size that `make test` runs.
FULL = os.environ.get("RELIABILITY", "").lower() == "full"


def size(quick: int, full: int) -> int:
    return full if FULL else quick


from server_process import ServerProcess, free_port  # noqa: E402, F401  (the e2e suite's server)

# The harness runs with keys in force, as production does: every server gets this admin key (tenant
# `default`, so the whole change log, statevec's reserved namespace included, is readable) unless
# RELIABILITY_API_KEY names another. The statevec per-IP limit would throttle a load test.
API_KEY = os.environ.get("RELIABILITY_API_KEY") or "stg_reliability-harness-admin-key-000000000000"
BASE_SETTINGS: dict[str, object] = {"statevec_rate_limit_anon": 0, "admin_key": API_KEY}


def start_server(data_dir: Path, **settings: object) -> "ServerProcess":
    return ServerProcess(data_dir, **{**BASE_SETTINGS, **settings}).start()


# --- credentials: the one place that adds them -----------------------------------------------------
def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def client(url: str, timeout: float = 10.0, **kw: Any) -> httpx.Client:
    """A plain HTTP client (no retries: an answer is acknowledged exactly once) carrying the credentials."""
    return httpx.Client(base_url=url, timeout=timeout, headers=auth_headers(), **kw)


# --- the change log ------------------------------------------------------------------------------------
def read_log(c: httpx.Client, namespace: str | None = None) -> list[dict]:
    """Every retained change set of the tenant (or of one namespace), by long-poll pages from revision 0."""
    events: list[dict] = []
    index = 0
    while True:
        params: dict[str, Any] = {"index": index, "wait": 0}
        if namespace:
            params["namespace"] = namespace
        r = c.get("/v1/watch", params=params)
        assert r.status_code == 200, (r.status_code, r.text)
        body = r.json()
        if not body["events"]:
            return events
        events += body["events"]
        index = body["events"][-1]["revision"]
        if index >= body["revision"]:
            return events


# --- figures: each test adds to them; conftest.py prints one table at the end -----------------------------
FIGURES: dict[str, int] = collections.Counter()
FINDINGS: list[str] = []  # one line per distinct problem found (printed under the table)
_lock = threading.Lock()


def record(name: str, n: int = 1) -> None:
    with _lock:
        FIGURES[name] += n


def finding(line: str) -> None:
    with _lock:  # one line per class: the first line names it, the rest is an example
        if line.split("\n")[0] not in {f.split("\n")[0] for f in FINDINGS}:
            FINDINGS.append(line)


# --- raw sockets (half-sent requests) -----------------------------------------------
def raw_connect(url: str, timeout: float) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)
