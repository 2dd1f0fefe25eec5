"""Change streams over real HTTP: SSE frames and long-poll, against uvicorn running the app in a thread."""

import threading
import time

import httpx
import pytest

from support import app_settings, live_app


@pytest.fixture
def server(tmp_path):
    with live_app(app_settings({"data_dir": str(tmp_path), "sse_keepalive_seconds": 0.3})) as url:
        yield url


def read_frames(resp, n, timeout=5.0):
    """Read n SSE frames (blank-line separated) as lists of lines."""
    if not hasattr(resp, "_line_iter"):
        resp._line_iter = resp.iter_lines()
    frames, lines = [], []
    deadline = time.monotonic() + timeout
    for line in resp._line_iter:
        if line == "":
            if lines:
                frames.append(lines)
                lines = []
            if len(frames) == n:
                return frames
        else:
            lines.append(line)
        assert time.monotonic() < deadline, f"got {frames}"
    return frames


def test_sse_replay_live_resume_and_keepalive(server):
    with httpx.Client(base_url=server, timeout=5) as c:
        for i in range(3):
            c.put(f"/v1/kv/app/k{i}", content=str(i).encode())
        with c.stream("GET", "/v1/watch", params={"namespace": "app", "from": 2}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            frames = read_frames(r, 3)
            assert frames[0] == ["retry: 3000", "id: 1"]
            assert frames[1][:2] == ["id: 2", "event: change"] and '"key":"k1"' in frames[1][2]
            assert frames[2][0] == "id: 3"
            c.put("/v1/kv/app/k9", content=b"9")
            live = read_frames(r, 1)[0]
            assert live[0] == "id: 4" and '"value":9' in live[2]
            assert read_frames(r, 1)[0] == [": keep-alive", "id: 4"]  # a progress id: where the stream stands
        with c.stream("GET", "/v1/watch", params={"namespace": "app"}, headers={"Last-Event-ID": "3"}) as r:
            frames = read_frames(r, 2)
            assert frames[0] == ["retry: 3000", "id: 3"] and frames[1][0] == "id: 4"


def test_sse_key_filter_with_prev_value(server):
    with httpx.Client(base_url=server, timeout=5) as c:
        c.put("/v1/kv/app/x", content=b"1")
        with c.stream("GET", "/v1/watch", params={"namespace": "app", "key": "x", "prev_value": "true"}) as r:
            read_frames(r, 1)
            c.put("/v1/kv/app/other", content=b"0")
            c.put("/v1/kv/app/x", content=b"2")
            frame = read_frames(r, 1)[0]
            assert frame[0] == "id: 3" and '"prev_value":1' in frame[2] and '"key":"x"' in frame[2]


def test_long_poll_returns_when_something_arrives(server):
    with httpx.Client(base_url=server, timeout=10) as c:
        c.put("/v1/kv/app/a", content=b"1")
        r = c.get("/v1/watch", params={"namespace": "app", "index": 0, "wait": "1s"})
        assert r.json()["events"][0]["revision"] == 1 and r.headers["x-stigmer-revision"] == "1"
        start = time.monotonic()
        r = c.get("/v1/watch", params={"namespace": "app", "index": 1, "wait": "0.3"})
        assert r.json() == {"revision": 1, "events": []} and time.monotonic() - start >= 0.25

        result = {}
        t = threading.Thread(target=lambda: result.update(r=c.get("/v1/watch", params={"namespace": "app", "index": 1, "wait": 10})))
        t.start()
        time.sleep(0.2)
        with httpx.Client(base_url=server) as c2:
            c2.put("/v1/kv/app/b", content=b"2")
        t.join(5)
        assert [e["revision"] for e in result["r"].json()["events"]] == [2]
        assert c.get("/v1/watch", params={"index": "x"}).status_code == 400
        assert c.get("/v1/watch", params={"index": 0, "wait": 61}).status_code == 400
        assert c.get("/v1/watch", params={"key": "a"}).json()["error"]["code"] == "invalid_argument"


def test_compacted_is_explicit(tmp_path):
    """The running server's own compactor removes history; the same server reports it at once (the compaction
    point is read from the database, not cached)."""
    from stigmer.clock import ManualClock

    clock = ManualClock()
    settings = app_settings({"data_dir": str(tmp_path), "change_retention_seconds": 60,
                             "compact_interval_seconds": 0.01})
    with live_app(settings, clock) as url, httpx.Client(base_url=url, timeout=5) as c:
        for i in range(3):
            c.put("/v1/kv/app/k", content=str(i).encode())
        clock.advance(61)  # the three changes are now older than the retention
        deadline = time.monotonic() + 10
        while c.get("/v1/revision").json()["compacted_revision"] != 3:
            assert time.monotonic() < deadline, "the compactor never ran"
        r = c.get("/v1/watch", params={"namespace": "app", "index": 1})
        assert r.status_code == 410
        err = r.json()["error"]
        assert err["code"] == "compacted" and err["details"] == {"oldest_revision": 4, "current_revision": 3}
        with c.stream("GET", "/v1/watch", params={"namespace": "app"}, headers={"Last-Event-ID": "1"}) as s:
            text = s.read().decode()
        assert "event: compacted" in text and '"oldest_revision":4' in text
        assert c.get("/v1/revision").json() == {"revision": 3, "compacted_revision": 3}


def test_from_zero_replays_everything(server):
    with httpx.Client(base_url=server, timeout=5) as c:
        c.put("/v1/kv/app/a", content=b"1")
        with c.stream("GET", "/v1/watch", params={"namespace": "app", "from": 0}) as r:
            frames = read_frames(r, 2)
            assert frames[0] == ["retry: 3000", "id: 0"] and frames[1][0] == "id: 1"


def test_a_quiet_key_resumes_after_retention_with_its_progress_id(tmp_path):
    """Keep-alives carry the stream's position (`id:`): a client watching a key nobody writes, while the rest of
    the tenant moves on and its history is compacted, resumes from that id without a false `compacted`; from
    its last change event alone it would be told `compacted`."""
    from stigmer.clock import ManualClock

    clock = ManualClock()
    settings = app_settings({"data_dir": str(tmp_path), "change_retention_seconds": 60,
                             "compact_interval_seconds": 0.01, "sse_keepalive_seconds": 0.2})
    with live_app(settings, clock) as url, httpx.Client(base_url=url, timeout=5) as c:
        c.put("/v1/kv/app/quiet", content=b"1")
        with c.stream("GET", "/v1/watch", params={"namespace": "app", "key": "quiet", "from": 1}) as r:
            assert read_frames(r, 2)[1][0] == "id: 1"
            for i in range(5):
                c.put("/v1/kv/app/busy", content=str(i).encode())  # revisions 2..6, none of them ours
            progress = None
            while progress != 6:
                (f,) = read_frames(r, 1)
                assert f[0] == ": keep-alive" and len(f) == 2, f  # nothing of `busy` reaches us
                progress = int(f[1].removeprefix("id: "))
                assert progress <= 6
        clock.advance(61)
        deadline = time.monotonic() + 10
        while c.get("/v1/revision").json()["compacted_revision"] != 6:
            assert time.monotonic() < deadline, "the compactor never ran"
        params = {"namespace": "app", "key": "quiet"}
        with c.stream("GET", "/v1/watch", params=params, headers={"Last-Event-ID": "1"}) as s:
            assert "event: compacted" in s.read().decode()  # what resuming from the last change would get
        with c.stream("GET", "/v1/watch", params=params, headers={"Last-Event-ID": str(progress)}) as r:
            assert read_frames(r, 1)[0] == ["retry: 3000", "id: 6"]
            c.put("/v1/kv/app/quiet", content=b"2")
            f = read_frames(r, 1)[0]
            assert f[:2] == ["id: 7", "event: change"] and '"value":2' in f[2]


def test_one_stream_per_format_shares_the_bytes(server):
    """Many streams of one filter and format get identical frames (rendered once), and a transaction
    touching two watched keys arrives as one event on each key's stream holding only that key."""
    with httpx.Client(base_url=server, timeout=5) as c:
        streams = [c.stream("GET", "/v1/watch", params={"namespace": "app", "key": k}) for k in ("a", "a", "b")]
        rs = [s.__enter__() for s in streams]
        try:
            for r in rs:
                read_frames(r, 1)
            txn = {"ops": [{"op": "put", "namespace": "app", "key": "a", "value": 1},
                           {"op": "put", "namespace": "app", "key": "b", "value": 2}]}
            assert c.post("/v1/txn", json=txn).status_code == 200
            got = [read_frames(r, 1)[0] for r in rs]
            assert got[0] == got[1] and got[0][0] == "id: 1" and '"key":"a"' in got[0][2] and '"key":"b"' not in got[0][2]
            assert got[2][0] == "id: 1" and '"key":"b"' in got[2][2] and '"key":"a"' not in got[2][2]
        finally:
            for s in streams:
                s.__exit__(None, None, None)
