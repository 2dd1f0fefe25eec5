"""The clock: one object, shared by the engine and the store, that says what time it is.

Every timestamp a write records (created, updated, expiry, change times) and every expiry check reads
`clock.now()`. Tests hand the server a `ManualClock` and advance it instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""


class SystemClock:
    """The machine's wall clock. Replicas on one database must keep their clocks in step (NTP)."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    def set(self, now: float) -> None:
        self._now = float(now)
