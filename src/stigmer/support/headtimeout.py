"""uvicorn HTTP protocols that close a connection whose request head does not arrive in time, and
send each loop turn's writes together (`coalesce.py`).

uvicorn bounds only the idle time after a response (keep-alive); a client that connects and sends
half a head (slowloris) would hold the connection forever. The timer runs from the connection's start
or a new request's first byte to the end of its headers.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .coalesce import CoalescingTransport


class _HeadTimer:
    head_timeout: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[misc]
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)  # type: ignore[misc]


class HttpToolsHeadTimeout(_HeadTimer, HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head()

    def on_headers_complete(self) -> None:
        self._disarm_head()
        super().on_headers_complete()


class H11HeadTimeout(_HeadTimer, H11Protocol):
    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # bytes of a new head (h11 has no message-begin hook)
            self._arm_head()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # h11 parsed the whole head
            self._disarm_head()


def protocol_class(http: str, head_timeout: float) -> type:
    """The protocol for `http` ("httptools" or "h11") with this head timeout, for uvicorn.Config(http=...)."""
    base = {"httptools": HttpToolsHeadTimeout, "h11": H11HeadTimeout}[http]
    return type(base.__name__, (base,), {"head_timeout": head_timeout})
