"""Virtual environments for the products' real clients (the statewave SDK, semvec's CLI, …), kept apart from
ours: some share a distribution name with a server we learn from, and none may change our pins.

One environment per requirement set, made once under the test cache (`TEST_CACHE_DIR`, default
`~/.cache/stigmer-tests`) and reused; a file lock makes parallel test workers wait for the one that builds it.
Only a registry that cannot be reached skips the test, with pip's own answer printed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cache_dir() -> Path:
    return Path(os.environ.get("TEST_CACHE_DIR", Path.home() / ".cache" / "stigmer-tests"))


def python_with(*requirements: str) -> str:
    """The interpreter of an environment that has exactly these requirements installed."""
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    root = cache_dir() / f"venv-{digest}"
    python = root / "bin" / "python"
    ready = root / ".ready"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"venv-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if ready.exists() and python.exists():
            return str(python)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True, capture_output=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                             capture_output=True, text=True, timeout=900)
        if pip.returncode != 0:
            pytest.skip(f"pip could not install {' '.join(requirements)}: {(pip.stderr or pip.stdout).strip()[-500:]}")
        ready.write_text("\n".join(requirements) + "\n")
    return str(python)
