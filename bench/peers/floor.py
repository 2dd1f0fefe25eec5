"""The load generator's ceiling: a raw uvloop HTTP/1.1 responder that answers every request with one
constant JSON body (no routing, no parsing beyond finding the end of each request's head).

If wrk drives this far faster than it drives Stigmer, the generator is not what limits Stigmer's figure.
Usage: python bench/peers/floor.py PORT
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"namespace":"bench","key":"hot1","value":{"n":1},"version":1}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)) + BODY


class Responder(asyncio.Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")  # GET requests only: no bodies to skip
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * n)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Responder, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
