"""Running the crewai driver (tests/e2e/crewai_driver.py) for tests/e2e/test_crewai_*.py.

crewai 1.15.30 pins pydantic<2.13 and the server pins 2.14.4, so crewai cannot live in our environment: it runs
in its own (tests/venvs.py) with our `src` on PYTHONPATH (the SDK needs only httpx and msgspec, pinned as ours),
against a real server process. One server per module, with keys made before it starts (`stigmer keys create`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pg_support import ON_POSTGRES, database_for
from venvs import python_with

REQUIREMENTS = ("crewai==1.15.30", "httpx==0.28.1", "msgspec==0.22.0")
DRIVER = Path(__file__).parent / "e2e" / "crewai_driver.py"
SRC = Path(__file__).parent.parent / "src"
# No telemetry or tracing from crewai: nothing leaves the machine in a test.
QUIET = {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_DISABLE_TRACKING": "true", "CREWAI_TRACING_ENABLED": "false",
         "OTEL_SDK_DISABLED": "true"}


def crewai_env(base: dict[str, str]) -> dict[str, str]:
    """An environment for crewai's interpreter: our SDK on PYTHONPATH, no STIGMER_* but those given, quiet."""
    return {k: v for k, v in base.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(SRC)} | QUIET


def crewai_python() -> str:
    """crewai's interpreter; skips, with the reason printed, when crewai cannot be imported there."""
    python = python_with(*REQUIREMENTS)
    probe = subprocess.run([python, "-c", "import crewai, crewai.tools, crewai.memory.storage.backend"],
                           capture_output=True, text=True, timeout=300, env=crewai_env(dict(os.environ)))
    if probe.returncode != 0:
        pytest.skip(f"crewai cannot be imported in {python}: {probe.stderr.strip()[-300:]}")
    return python


def keys_create(data: Path, tenant: str, scopes: str) -> str:
    place = ["--database-url", database_for(str(data))] if ON_POSTGRES else ["--data-dir", str(data)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")}
    p = subprocess.run([sys.executable, "-m", "stigmer.cli", "keys", "create", *place, "--tenant", tenant,
                        "--scope", scopes, "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["secret"]


def keyed_server(data: Path):
    """A started server whose `keys` are: `a` (team-a read,write), `a_read` (team-a read), `b` (team-b)."""
    from server_process import ServerProcess

    keys = {"a": keys_create(data, "team-a", "read,write"), "a_read": keys_create(data, "team-a", "read"),
            "b": keys_create(data, "team-b", "read,write")}
    s = ServerProcess(data).start()
    s.keys = keys
    return s


def drive(python: str, scenario: str, **doc: object) -> dict:
    env = crewai_env({k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")})
    out = subprocess.run([python, str(DRIVER)], input=json.dumps({"scenario": scenario, **doc}), env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
