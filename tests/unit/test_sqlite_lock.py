"""One open SQLite store per data directory, within a process too; closing (or dying) frees it."""

import os
import subprocess
import sys

import pytest

from stigmer.store.sqlite import SQLiteStore
from stigmer.store.sqlite.lock import DataDirInUse, DataDirLock, check_free


async def test_a_second_store_on_the_same_directory_is_refused_until_the_first_closes(tmp_path):
    data = str(tmp_path / "data")
    first = SQLiteStore(data)
    await first.open()
    with pytest.raises(DataDirInUse) as e:
        await SQLiteStore(data).open()
    assert os.path.abspath(data) in str(e.value) and "another Stigmer server" in str(e.value)
    assert e.value.pid == os.getpid()
    other = SQLiteStore(str(tmp_path / "other"))  # another directory is another lock
    await other.open()
    await other.close()
    await first.close()
    again = SQLiteStore(data)  # close then reopen, as tests and restarts do
    await again.open()
    await again.close()
    check_free(data)


def test_the_lock_goes_with_a_killed_holder(tmp_path):
    code = ("import sys, time; from stigmer.store.sqlite.lock import DataDirLock; "
            "DataDirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "held\n"
        with pytest.raises(DataDirInUse) as e:
            DataDirLock(str(tmp_path)).acquire()
        assert e.value.pid == p.pid
    finally:
        p.kill()
        p.wait()
    with DataDirLock(str(tmp_path)):  # the kernel dropped it; the stale file is harmless
        pass
