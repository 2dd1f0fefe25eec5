"""One Stigmer process per SQLite data directory: an exclusive `flock` on `<data_dir>/stigmer.lock`.

Two writers on one database would each count revisions from their own copy of the counters. `flock` is
held per open file description, so a second store in the same process is refused too, and the kernel
drops the lock when the holder dies (even by SIGKILL): a stale lock file is harmless.
"""

from __future__ import annotations

import fcntl
import os

LOCK_FILE = "stigmer.lock"


class DataDirInUse(Exception):
    """Another open store holds the data directory's lock."""

    def __init__(self, data_dir: str, pid: int | None = None):
        self.data_dir = os.path.abspath(data_dir)
        self.pid = pid
        holder = f" (pid {pid})" if pid else ""
        super().__init__(f"the data directory {self.data_dir} is in use: another Stigmer server{holder} is using it"
                         " (one server per data directory)")


class DataDirLock:
    """`acquire()` or raise DataDirInUse; `release()`. The holder's pid is written in the file for the message."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> "DataDirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirInUse(self.data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "DataDirLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def check_free(data_dir: str) -> None:
    """Raise DataDirInUse if a store holds `data_dir` now (take the lock and drop it at once)."""
    if os.path.isdir(data_dir):
        DataDirLock(data_dir).acquire().release()
