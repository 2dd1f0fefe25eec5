"""A real chat-completions server for tests (http.server in a thread, real HTTP), one behaviour per path prefix:
`/good` answers, `/slow` waits longer than a client's timeout, `/trickle` sends its answer a byte at a time (no
single read times out, the whole call must), `/error` is a 500, `/badjson`, `/empty`, `/nocontent` and `/huge`
answer 200 with a body a client must refuse.

The memory compiler's requests (its system prompt, engine/memory/llm_compiler.py) get one memory per episode,
in reverse episode order (so only `episode_index` maps them): kind `profile_fact`, content the episode's text
with its markers removed. Markers in a text steer the answer of its batch: `[kind:X]` sets that episode's
kind, `[fail:500]` answers 500, `[fail:badjson]` / `[fail:prose]` / `[fail:object]` a body that breaks the
contract, `[fail:index]` an episode_index past the batch, `[fail:slow]` waits past any client timeout,
`[fence]` wraps the array in a Markdown fence. The server counts compile requests in flight
(`in_flight`, `max_in_flight`); with `hold_until = n`, the first requests wait until n are in flight at once
(or `release`), then every request passes."""

from __future__ import annotations

import contextlib
import json
import re
import threading

from local_http import JSONHandler, LocalServer, running
from stigmer.engine.memory.llm_compiler import COMPILE_PROMPT
from stigmer.support.llm import FOLLOW_UPS_PROMPT, MAX_RESPONSE_BYTES, TITLE_PROMPT

SLOW_SECONDS = 3.0  # the slow server's delay: far beyond any client timeout of the tests
MODES = {"good", "slow", "trickle", "error", "badjson", "empty", "nocontent", "huge"}
TITLE = "Configuring leases"
MARKER = re.compile(r"\[(?:kind:[\w-]+|fail:\w+|fence)\]")


def compiled_content(text: str) -> str:
    """What the server answers as the memory of an episode's text."""
    return MARKER.sub("", text).strip()


class ChatServer(LocalServer):
    def __init__(self, handler):
        super().__init__(handler)
        self.changed = threading.Condition()
        self.in_flight = self.max_in_flight = 0
        self.hold_until: int | None = None

    def enter(self) -> None:
        with self.changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.hold_until is not None and self.in_flight >= self.hold_until:
                self.hold_until = None  # reached once: from now on nobody waits
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.hold_until is None or self.release.is_set(), SLOW_SECONDS)

    def wait_in_flight(self, n: int, timeout: float = 10.0) -> bool:
        """Block until at least `n` compile requests are in flight (a test thread's view)."""
        with self.changed:
            return self.changed.wait_for(lambda: self.in_flight >= n, timeout)

    def open_gate(self) -> None:
        with self.changed:
            self.hold_until = None
            self.changed.notify_all()

    def leave(self) -> None:
        with self.changed:
            self.in_flight -= 1
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
        if system == COMPILE_PROMPT and mode == "good":
            self.server.enter()
            try:
                status, answer = self.compile_answer(json.loads(body["messages"][1]["content"])["episodes"])
            finally:
                self.server.leave()  # before the reply: the client may start its next request once it has it
            return self.reply(status, answer)
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


    def compile_answer(self, episodes: list[dict]) -> tuple[int, bytes]:
        joined = " ".join(e["text"] for e in episodes)
        if "[fail:500]" in joined:
            return 500, b'{"error":{"message":"model overloaded"}}'
        if "[fail:slow]" in joined:
            self.server.release.wait(SLOW_SECONDS)
        items = []
        for e in reversed(episodes):
            kind = re.search(r"\[kind:([\w-]+)\]", e["text"])
            content = compiled_content(e["text"])
            items.append({"kind": kind.group(1) if kind else "profile_fact", "content": content,
                          "summary": content[:50], "confidence": 0.9, "episode_index": e["episode_index"]})
        if "[fail:index]" in joined:
            items[0]["episode_index"] = len(episodes)
        answer = json.dumps(items)
        if "[fail:badjson]" in joined:
            answer = answer[:-3]
        elif "[fail:prose]" in joined:
            answer = "Here are the memories you asked for."
        elif "[fail:object]" in joined:
            answer = json.dumps({"memories": items})
        elif "[fence]" in joined:
            answer = "```json\n" + answer + "\n```"
        return 200, chat_answer(answer)


def running_chat_server() -> contextlib.AbstractContextManager[ChatServer]:
    return running(ChatServer(ChatHandler))
