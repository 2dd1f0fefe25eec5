"""Shared fixtures: a real SQLite store on a temporary file, the engine over it, and the app in-process."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from stigmer.app import create_app
from stigmer.engine.changes import ChangeHub
from stigmer.engine.kv import KV, Limits
from stigmer.store.sqlite import SQLiteStore
from support import ADMIN_KEY, app_settings


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "data"))
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def hub(store):
    return ChangeHub(store, buffer=256)


@pytest.fixture
def kv(store, hub):
    return KV(store, Limits(max_value_bytes=4096, max_batch=10))


@pytest.fixture
def make_client(tmp_path):
    """Start the whole app in-process (lifespan included) with the given setting overrides."""
    clients = []

    def make(**overrides):
        # Each app gets its own data directory unless the test passes one (to share data across apps).
        data_dir = str(tmp_path / ("app" if not clients else f"app{len(clients)}"))
        settings = app_settings({"data_dir": data_dir, **overrides})
        c = TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False)
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def keyed_client(make_client):
    """An app with keys in force (the bootstrap admin key exists)."""
    return make_client(admin_key=ADMIN_KEY)
