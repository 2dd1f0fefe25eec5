"""A cap on concurrent streams per client (credential, or IP without one), for every streaming route."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ...engine.errors import EngineError


class TooManyStreams(EngineError):
    code = "too_many_streams"

    def __init__(self, limit: int):
        super().__init__(f"too many open streams (at most {limit} per client)", limit=limit)


class StreamSlots:
    def __init__(self, limit: int):
        self.limit = limit
        self.open: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.open.values())

    def take(self, client: str) -> None:
        n = self.open.get(client, 0)
        if n >= self.limit:
            raise TooManyStreams(self.limit)
        self.open[client] = n + 1

    def give_back(self, client: str) -> None:
        n = self.open.get(client, 1) - 1
        if n > 0:
            self.open[client] = n
        else:
            self.open.pop(client, None)

    @contextlib.contextmanager
    def held(self, client: str) -> Iterator[None]:
        try:
            yield
        finally:
            self.give_back(client)
