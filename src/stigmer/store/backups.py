"""What both stores' backup and restore share: the error, the summary, the checksum file, atomic writes.

Neither SQLite's integrity check nor pg_restore notices every damaged byte (a value's bytes, or the
schema text in an archive's table of contents), so a backup also writes `<file>.sha256` (the format of
`sha256sum`), and a restore refuses a file that does not match it.
"""

from __future__ import annotations

import contextlib
import hashlib
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
    checksum: str = ""  # what became of the checksum file, for the summary line

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
        note = f", {self.checksum}" if self.checksum else ""
        return f"{_size(self.size)}, schema {self.schema_version}, {tenants}{note}"


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


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_checksum(digest: str, final: str) -> str:
    """Write `<final>.sha256` holding `digest`; return the note for the summary."""
    side = final + ".sha256"
    with temp_beside(side, "partial") as tmp:
        with open(tmp, "w") as f:
            f.write(f"{digest}  {os.path.basename(final)}\n")
        install(tmp, side)
    return f"checksum in {side}"


def check_checksum(path: str, *, copy: str | None = None) -> str:
    """Compare `copy` (default `path`) with `<path>.sha256` when there is one; raise on a mismatch."""
    side = path + ".sha256"
    try:
        with open(side) as f:
            want = f.read().split()[0].lower()
    except FileNotFoundError:
        return f"no {os.path.basename(side)} beside it: checked its structure only"
    except (OSError, IndexError) as exc:
        raise BackupError("invalid_backup", f"cannot read the checksum file {side}: {exc}") from None
    if sha256_of(copy or path) != want:
        raise BackupError("invalid_backup", f"{path} does not match its checksum file {side}: it was damaged or "
                                            "changed after the backup")
    return f"checksum matches {os.path.basename(side)}"
