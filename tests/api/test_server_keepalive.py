"""server.build on a real socket (in a thread): an idle keep-alive connection is closed after its timeout."""

import socket
import threading
import time

from stigmer.config import Settings
from stigmer.server import build


def test_idle_keep_alive_connection_is_closed(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings.load({"data_dir": str(tmp_path), "port": port, "log_level": "warning",
                              "keepalive_timeout_seconds": 0.5, "head_timeout_seconds": 30}, environ={})
    server = build(settings)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
            start = time.monotonic()
            c.settimeout(3)
            assert c.recv(4096) == b""  # closed by the server
            assert 0.4 <= time.monotonic() - start < 2
    finally:
        server.should_exit = True
        t.join(5)
