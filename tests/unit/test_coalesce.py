"""The coalescing transport: one write per loop turn, nothing held past a close, nothing held unbounded."""

from __future__ import annotations

import asyncio

from stigmer.support import coalesce
from stigmer.support.coalesce import CoalescingTransport


class Recorder(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data):
        self.writes.append(bytes(data))

    def close(self):
        self.events.append(f"close after {len(self.writes)} writes")
        self.closing = True

    def is_closing(self):
        return self.closing

    def get_write_buffer_size(self):
        return 0

    def abort(self):
        self.closing = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default


def test_one_loop_turn_is_one_write_and_close_sends_what_is_held_first():
    async def main():
        real = Recorder()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert real.writes == [] and t.get_write_buffer_size() == 23
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"last")
        t.close()
        assert real.writes[-1] == b"last" and real.events == ["close after 2 writes"]
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the real transport's

    asyncio.run(main())


def test_a_large_turn_goes_out_without_waiting_for_the_turn_to_end():
    async def main():
        real = Recorder()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        chunk = b"x" * (coalesce.FLUSH_BYTES // 4)
        for _ in range(4):
            t.write(chunk)
        assert real.writes == [chunk * 4]
        t.write(b"tail")
        t.abort()  # an aborted connection drops what is held
        await asyncio.sleep(0)
        assert real.writes == [chunk * 4]

    asyncio.run(main())
