"""Every acknowledged write survives `kill -9` of the server in the middle of a write storm."""

from __future__ import annotations

import threading
import time

from stigmer.client import Client, ConnectionFailedError, Retry, StigmerError

WRITERS = 6


def test_acknowledged_writes_survive_sigkill(server, ns):
    acked: dict[str, object] = {}
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer(w: int) -> None:
        # retries=0: a write is never re-sent, so "acknowledged" means exactly one 2xx answer
        with Client(server.url, retry=Retry(retries=0), timeout=5) as c:
            n = 0
            while not stop.is_set():
                key, value = f"w{w}/{n:05d}", {"writer": w, "n": n, "pad": "x" * (n % 50)}
                try:
                    c.put(ns, key, value)
                except ConnectionFailedError:
                    return  # the server is gone; unacknowledged writes may or may not have landed
                except StigmerError as exc:
                    failures.append(exc)
                    return
                with lock:
                    acked[key] = value
                n += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(t.is_alive() for t in threads), "writers stopped before the kill"
    server.kill()  # SIGKILL while every writer has requests in flight
    for t in threads:
        t.join(10)
    stop.set()
    assert not failures, failures
    assert len(acked) >= 300

    server.start()
    with Client(server.url) as c:
        stored = {e.key: e.value for e in c.list(ns, page_size=1000)}
        rev = c.revision().revision
    missing = [k for k in acked if k not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert all(stored[k] == v for k, v in acked.items())
    # each writer's keys are a gap-free run: a write is only sent after the previous one was acknowledged
    for w in range(WRITERS):
        ns_keys = sorted(k for k in stored if k.startswith(f"w{w}/"))
        assert ns_keys == [f"w{w}/{n:05d}" for n in range(len(ns_keys))]
    assert rev >= len(acked)
