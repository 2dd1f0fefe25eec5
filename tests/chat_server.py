"""A real chat-completions server for tests (http.server in a thread, real HTTP), one behaviour per path prefix:
`/good` answers, `/slow` waits longer than a client's timeout, `/trickle` sends its answer a byte at a time (no
single read times out, the whole call must), `/error` is a 500, `/badjson`, `/empty`, `/nocontent` and `/huge`
answer 200 with a body a client must refuse."""

from __future__ import annotations

import contextlib
import json

from local_http import JSONHandler, LocalServer, running
from stigmer.support.llm import FOLLOW_UPS_PROMPT, MAX_RESPONSE_BYTES, TITLE_PROMPT

SLOW_SECONDS = 3.0  # the slow server's delay: far beyond any client timeout of the tests
MODES = {"good", "slow", "trickle", "error", "badjson", "empty", "nocontent", "huge"}
TITLE = "Configuring leases"
FOLLOW_UPS = ["What is a fencing token?", "How long is a TTL?", "Can a lease be renewed?"]


def chat_answer(content) -> bytes:
    return json.dumps({"id": "c1", "object": "chat.completion", "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


class ChatHandler(JSONHandler):
    def reply(self, status: int, body: bytes, trickle: bool = False) -> None:
        if not trickle:
            return super().reply(status, body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        for i in range(len(body)):
            if self.server.release.wait(0.1):
                return
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()

    def do_POST(self):
        body = self.read_json()
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


def running_chat_server() -> contextlib.AbstractContextManager[LocalServer]:
    return running(LocalServer(ChatHandler))
