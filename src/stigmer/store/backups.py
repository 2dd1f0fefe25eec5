"""What both stores' backup and restore share: the error, the summary, and writing a file atomically."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, NamedTuple


class BackupError(Exception):
    """A backup or restore refused or failed; `code` names the kind for the CLI's `error [code]: ...`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Summary(NamedTuple):
    """What a verified backup holds."""

    path: str
    size: int
    schema_version: int
    revisions: dict[str, int]  # tenant -> newest revision

    def details(self) -> str:
        """`1.2 MB, schema 3, 2 tenants (default at revision 41, team at revision 7)`."""
        revs = self.revisions
        if not revs:
            tenants = "no tenants"
        elif len(revs) <= 5:
            listed = ", ".join(f"{t} at revision {r}" for t, r in sorted(revs.items()))
            tenants = f"{len(revs)} tenant{'s' if len(revs) > 1 else ''} ({listed})"
        else:
            tenants = f"{len(revs)} tenants, {sum(revs.values())} revisions in all, newest {max(revs.values())}"
        return f"{_size(self.size)}, schema {self.schema_version}, {tenants}"


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


@contextlib.contextmanager
def temp_beside(path: str, tag: str) -> Iterator[str]:
    """A temporary name in `path`'s directory (so a rename onto `path` is atomic), removed unless renamed."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{tag}-{os.getpid()}")
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def install(tmp: str, path: str) -> None:
    """Make `tmp` durable, then rename it onto `path` and make the rename durable."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
