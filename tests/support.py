"""Helpers shared by the tests (importable as `support`: tests/ is on pytest's path)."""

from __future__ import annotations

import socket
import time


ADMIN_KEY = "stg_test-admin-key-for-the-in-process-app-0001"


def app_settings(values: dict):
    """Settings for an in-process app. On the PostgreSQL run (`make test-postgres`) its data directory
    stands for a database of its own."""
    from stigmer.config import Settings

    from pg_support import ON_POSTGRES, database_for

    values = dict(values)
    if ON_POSTGRES:
        values.setdefault("database_url", database_for(values["data_dir"]))
    return Settings.load(values, environ={})


def new_key(c, tenant: str = "default", scopes=("read", "write", "watch"), prefixes=(), **extra) -> str:
    """Create an API key through the admin API of an app started with `admin_key=ADMIN_KEY`."""
    r = c.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes), "prefixes": list(prefixes), **extra},
               headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def native_error(r, status: int, code: str = "invalid_argument", field: str | None = None) -> dict:
    """Assert a native error answer (status, `error.code`, `details.field`); returns its `error` object."""
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code, body
    if field is not None:
        assert body["details"]["field"] == field, body
    return body


def stored(c, tenant: str, namespace: str, key: str):
    """The live entry as the engine of an in-process app (a TestClient) reads it."""
    return c.portal.call(c.app.state.services.kv.get, tenant, namespace, key)


def revision(c, tenant: str) -> int:
    return c.portal.call(c.app.state.services.hub.revision, tenant).current


def live_app(settings, clock=None):
    """The app on uvicorn in a thread (an SSE stream needs a real server to be read and left): a context
    manager yielding its URL. `clock` (a ManualClock) lets the test move the app's time."""
    import contextlib
    import socket
    import threading
    import time

    import uvicorn

    from stigmer.app import create_app

    @contextlib.contextmanager
    def run():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = uvicorn.Server(uvicorn.Config(create_app(settings, clock), host="127.0.0.1", port=port, log_level="warning"))
        t = threading.Thread(target=srv.run, daemon=True)
        t.start()
        while not srv.started:
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            srv.should_exit = True
            t.join(5)

    return run()


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes `sock` (discarding what it sends), or None if it stays open `limit` s."""
    sock.settimeout(limit)
    start = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:  # a reset is a close too
        pass
    return time.monotonic() - start


def until(check, what: str, deadline: float = 30.0):
    """Poll `check()` until it returns a true value, for state a test can only see by asking a server
    (a real process: no event to wait on); fails after `deadline` seconds naming `what`."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"waited for {what}"
        time.sleep(0.02)


def assert_static_asset(c, path: str, media: str) -> None:
    """A page asset (/docs, /console): public, typed, revalidated by ETag (no-cache), under the strict CSP."""
    r = c.get(path)
    assert r.status_code == 200, (path, r.text)
    assert r.headers["content-type"].startswith(media), path
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert c.get(path, headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def metric_samples(exposition: str) -> dict[tuple[str, frozenset], float]:
    """A Prometheus text exposition as {(sample name, frozenset of label pairs): value} (label order is free)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))
