"""SIGTERM with open streams and a busy writer: a quick, quiet exit that loses no acknowledged write."""

from __future__ import annotations

import threading
import time

import httpx


class Stream(threading.Thread):
    """Reads one SSE stream to its end; records event ids and how it ended."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        super().__init__(daemon=True)
        self.url, self.headers = url, headers or {}
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.ids: list[int] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=httpx.Timeout(10, read=30)) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        self.ids.append(int(line[4:]))
                        self.opened.set()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.opened.set()
            self.ended.set()


class Writer(threading.Thread):
    """PUTs distinct keys until the server goes away; keeps the keys it got a 2xx for."""

    def __init__(self, url: str, ns: str):
        super().__init__(daemon=True)
        self.url, self.ns = url, ns
        self.acked: list[str] = []
        self.busy = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as c:
            for i in range(100_000):
                try:
                    r = c.put(f"/v1/kv/{self.ns}/w{i}", json={"i": i})
                except httpx.TransportError:
                    return  # refused: the server is stopping
                if r.status_code in (200, 201):
                    self.acked.append(f"w{i}")
                if len(self.acked) >= 20:
                    self.busy.set()


def test_sigterm_ends_streams_at_once_and_keeps_acked_writes(make_server, tmp_path, ns):
    server = make_server(log_level="info").start()
    native = Stream(f"{server.url}/v1/watch?namespace={ns}")
    cntrl = Stream(f"{server.url}/v1/state/wf-{ns}/k/stream")
    streams = [native, cntrl]
    for s in streams:
        s.start()
    for s in streams:
        assert s.opened.wait(10) and s.error is None, s.error
    poll_done = threading.Event()
    threading.Thread(target=lambda: (httpx.get(f"{server.url}/v1/watch?namespace=idle-{ns}&index=1000000&wait=30",
                                               timeout=40), poll_done.set()), daemon=True).start()
    writer = Writer(server.url, ns)
    writer.start()
    assert writer.busy.wait(10)
    # A position beyond the current revision is answered at once (400 future_revision), so the poll is over
    # before the signal; waiting here keeps it from racing the closed listening socket.
    assert poll_done.wait(10)

    start = time.monotonic()
    server.proc.terminate()
    server.proc.wait(5)
    took = time.monotonic() - start
    server.proc = None
    assert took < 1.5, f"exit took {took:.2f}s"
    for s in streams:
        assert s.ended.wait(2)
        assert s.error is None, f"stream did not end cleanly: {s.error!r}"  # a clean chunked end
    assert poll_done.wait(2)
    writer.join(5)
    log = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert "Traceback" not in log and "ERROR" not in log, log

    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        stored, cursor = set(), None
        while True:
            page = c.get(f"/v1/kv/{ns}", params={"limit": 1000, "values": "false",
                                                 **({"cursor": cursor} if cursor else {})}).json()
            stored |= {e["key"] for e in page["entries"]}
            if not (cursor := page["next_cursor"]):
                break
        assert set(writer.acked) <= stored, f"lost {len(set(writer.acked) - stored)} acknowledged writes"
        # The native stream resumes where it stopped, with no gap: the next change set is revision last + 1.
        last = native.ids[-1]
        c.put(f"/v1/kv/{ns}/after-restart", json=1)
        with c.stream("GET", f"/v1/watch?namespace={ns}", headers={"Last-Event-ID": str(last)}) as r:
            ids = []
            for line in r.iter_lines():
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
                if len(ids) == 2:
                    break
    assert ids[0] == last  # the stream's opening id: where it resumes from
    assert ids[1] == last + 1
