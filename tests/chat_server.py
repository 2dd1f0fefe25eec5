"""A real chat-completions server for tests (http.server in a thread, real HTTP), one behaviour per path prefix:
`/good` answers, `/slow` waits longer than a client's timeout, `/trickle` sends its answer a byte at a time (no
single read times out, the whole call must), `/error` is a 500, `/badjson`, `/empty`, `/nocontent` and `/huge`
answer 200 with a body a client must refuse."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from stigmer.support.llm import FOLLOW_UPS_PROMPT, MAX_RESPONSE_BYTES, TITLE_PROMPT

SLOW_SECONDS = 3.0  # the slow server's delay: far beyond any client timeout of the tests
MODES = {"good", "slow", "trickle", "error", "badjson", "empty", "nocontent", "huge"}
TITLE = "Configuring leases"
FOLLOW_UPS = ["What is a fencing token?", "How long is a TTL?", "Can a lease be renewed?"]


def chat_answer(content) -> bytes:
    return json.dumps({"id": "c1", "object": "chat.completion", "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict] = []
        self.release = threading.Event()  # set at teardown so a slow handler ends at once

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up first is the test
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChatServer

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: bytes, trickle: bool = False) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if not trickle:
            self.wfile.write(body)
            return
        for i in range(len(body)):
            if self.server.release.wait(0.1):
                return
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        mode = self.path.split("/")[1]
        if mode not in MODES or self.path != f"/{mode}/chat/completions":
            return self.reply(404, b'{"error":"not found"}')
        system = body["messages"][0]["content"]
        if system == TITLE_PROMPT:
            answer = f'"{TITLE}"\n'
        elif system == FOLLOW_UPS_PROMPT.format(n=3):
            answer = json.dumps([*FOLLOW_UPS, "Fourth?"])
        else:
            answer = "  pong  "
        if mode == "good":
            self.reply(200, chat_answer(answer))
        elif mode == "slow":
            self.server.release.wait(SLOW_SECONDS)
            self.reply(200, chat_answer(answer))
        elif mode == "trickle":
            self.reply(200, chat_answer(answer), trickle=True)
        elif mode == "error":
            self.reply(500, b'{"error":{"message":"model overloaded"}}')
        elif mode == "badjson":
            self.reply(200, b'{"choices": [{"message": ')
        elif mode == "empty":
            self.reply(200, chat_answer("   "))
        elif mode == "nocontent":
            self.reply(200, b'{"choices": []}')
        elif mode == "huge":
            self.reply(200, chat_answer("x" * (MAX_RESPONSE_BYTES + 10)))


@contextlib.contextmanager
def running_chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
