"""The real `statewave` SDK (PyPI statewave 1.5.0) for end-to-end tests: its own virtual environment
(tests/venvs.py) and `drive`, which runs a list of SDK calls there (tests/e2e/statewave_sdk_driver.py), with the
sync or the async client, and returns each call's outcome (`{"ok": value}` or `{"error": …}`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from venvs import python_with

SDK = "statewave==1.5.0"
DRIVER = Path(__file__).parent / "e2e" / "statewave_sdk_driver.py"


def sdk_python() -> str:
    return python_with(SDK)


def drive(python: str, url: str, calls: list, *, api_key: str | None = None, tenant_id: str | None = None,
          use_async: bool = False) -> list:
    doc = {"base_url": url, "api_key": api_key, "tenant_id": tenant_id, "async": use_async, "calls": calls}
    out = subprocess.run([python, str(DRIVER)], input=json.dumps(doc), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ok(result: dict):
    assert "ok" in result, result
    return result["ok"]
