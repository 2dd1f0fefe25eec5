"""Storage faults: the data directory on a small tmpfs that fills up and is freed again, and a read-only one.

While the disk is full, writes answer 507 or 503 (never 500) on a connection that stays open and /readyz
says not ready; once space is freed writes succeed again without a restart, and nothing acknowledged is lost
(not even across a later kill -9).
"""

from __future__ import annotations

import errno
import http.client
import json
import subprocess
from pathlib import Path

import pytest

from rel_support import auth_headers, finding, record, start_server

FULL_WRITES = 40  # writes tried while the disk is full


def mount_tmpfs(path: Path, size: str = "4m") -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode:
        reason = f"cannot mount a tmpfs here: {(r.stderr or r.stdout).strip()}"
        print(reason)
        pytest.skip(reason)


def data_link(tmp_path: Path, mnt: Path) -> Path:
    """The data dir on the mount, seen through a symlink so that the server log (beside it) stays off it."""
    (mnt / "data").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "data").symlink_to(mnt / "data")
    return tmp_path / "logs" / "data"


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> Path:
    junk = path / "junk"
    with open(junk, "wb", buffering=0) as f:  # unbuffered: closing has nothing left to flush onto a full disk
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return junk


class Conn:
    """One keep-alive HTTP connection; `same` tells whether the server kept it open across requests."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.http = http.client.HTTPConnection(host, int(port), timeout=15)
        self.sock = None
        self.same = True

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """(status, body); status 0 when the server dropped the connection without an answer."""
        data = None if body is None else json.dumps(body).encode()
        try:
            self.http.request(method, path, body=data, headers={"Content-Type": "application/json", **auth_headers()})
            if self.sock is not None and self.http.sock is not self.sock:
                self.same = False
            resp = self.http.getresponse()
            out = resp.status, resp.read()
        except (ConnectionError, http.client.HTTPException) as exc:
            self.http.close()
            self.same, self.sock = False, None
            return 0, f"no answer: {type(exc).__name__}".encode()
        if resp.will_close:
            self.same = False
        self.sock = self.http.sock
        return out


def test_disk_full_then_freed(tmp_path):
    mnt = tmp_path / "mnt"
    mount_tmpfs(mnt)
    server = None
    try:
        server = start_server(data_link(tmp_path, mnt))
        c = Conn(server.url)
        acked: dict[str, object] = {}
        for i in range(20):
            assert c.request("PUT", f"/v1/kv/disk/before{i}", {"i": i})[0] in (200, 201)
            acked[f"before{i}"] = {"i": i}
        junk = fill(mnt)
        statuses: dict[int, int] = {}
        bad = []
        for i in range(FULL_WRITES):
            value = {"i": i, "pad": "x" * 4000}
            status, body = c.request("PUT", f"/v1/kv/disk/full{i}", value)
            statuses[status] = statuses.get(status, 0) + 1
            if status in (200, 201):
                acked[f"full{i}"] = value
            elif status not in (503, 507):
                bad.append((f"PUT /v1/kv/disk/full{i}", status, body[:200]))
        ready = c.request("GET", "/readyz")
        record("storage: writes tried on a full disk", FULL_WRITES)
        junk.unlink()
        after = c.request("PUT", "/v1/kv/disk/after", {"after": True})
        if after[0] in (200, 201):
            acked["after"] = {"after": True}
        stored = {k: json.loads(c.request("GET", f"/v1/kv/disk/{k}")[1] or b"null").get("value") for k in acked}
        server.kill()
        server.start()
        c2 = Conn(server.url)
        restarted = {k: json.loads(c2.request("GET", f"/v1/kv/disk/{k}")[1]).get("value") for k in acked}
        record("storage: acknowledged writes checked", len(acked))

        problems = []
        if bad:
            problems.append(f"writes on a full disk answered {sorted({b[1] for b in bad})} (0 = connection dropped), "
                            f"e.g. {bad[0]}")
        if not any(s in (503, 507) for s in statuses):
            problems.append(f"no write on a full disk was refused with 507/503: statuses {statuses}")
        if not c.same:
            problems.append("the server closed the connection after a write failed")
        if ready[0] != 503:
            problems.append(f"/readyz on a full disk: {ready[0]} {ready[1][:200]!r} (want 503 not_ready)")
        if after[0] not in (200, 201):
            problems.append(f"after freeing space a write answered {after[0]} {after[1][:200]!r} (want 2xx, no restart)")
        lost = [k for k in acked if stored[k] != acked[k] or restarted[k] != acked[k]]
        if lost:
            problems.append(f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}")
        for p in problems:
            finding(f"storage (full disk): {p}")
        assert not problems, "\n".join(problems)
    finally:
        if server:
            server.kill()
        umount(mnt)


def test_read_only_data_dir(tmp_path):
    mnt = tmp_path / "ro"
    mount_tmpfs(mnt, "16m")
    server = None
    try:
        server = start_server(data_link(tmp_path, mnt))
        c = Conn(server.url)
        assert c.request("PUT", "/v1/kv/ro/k", {"v": 1})[0] in (200, 201)
        server.stop()
        r = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        problems = []
        try:
            server.start()
        except RuntimeError as exc:
            server.proc = None
            text = str(exc).lower()
            record("storage: read-only data dir refused at start-up")
            if "read-only" not in text and "readonly" not in text:
                last = [line.strip() for line in str(exc).splitlines() if line.strip()][-2:]
                problems.append(f"server exits on a read-only data dir without saying so: {' / '.join(last)}")
        else:
            c = Conn(server.url)
            got = c.request("GET", "/v1/kv/ro/k")
            put = c.request("PUT", "/v1/kv/ro/k2", {"v": 2})
            ready = c.request("GET", "/readyz")
            if got[0] != 200:
                problems.append(f"GET on a read-only data dir: {got[0]} {got[1][:200]!r}")
            if put[0] not in (503, 507):
                problems.append(f"PUT on a read-only data dir: {put[0]} {put[1][:200]!r} (want 503/507)")
            if ready[0] != 503:
                problems.append(f"/readyz on a read-only data dir: {ready[0]} {ready[1][:200]!r} (want 503)")
        for p in problems:
            finding(f"storage (read-only): {p}")
        assert not problems, "\n".join(problems)
    finally:
        if server:
            server.kill()
        umount(mnt)
