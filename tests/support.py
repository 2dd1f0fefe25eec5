"""Helpers shared by the tests (importable as `support`: tests/ is on pytest's path)."""

from __future__ import annotations


ADMIN_KEY = "stg_test-admin-key-for-the-in-process-app-0001"


def new_key(c, tenant: str = "default", scopes=("read", "write", "watch"), prefixes=(), **extra) -> str:
    """Create an API key through the admin API of an app started with `admin_key=ADMIN_KEY`."""
    r = c.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes), "prefixes": list(prefixes), **extra},
               headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 201, r.text
    return r.json()["secret"]
