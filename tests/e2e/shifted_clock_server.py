"""A Stigmer server process whose clock the test can move forward (tests/e2e/test_statewave_webhooks_e2e.py).

It is the real app (`create_app`) on uvicorn, with the system clock plus a shift: each SIGUSR1 adds
SHIFT_SECONDS, so an event whose next attempt is due in 30 s (or 32 min) is due at the worker's next poll,
and the test never waits for a backoff. Settings come from STIGMER_* variables.

    python shifted_clock_server.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import uvicorn

from stigmer.app import create_app
from stigmer.config import Settings

SHIFT_SECONDS = 3600.0  # beyond the longest backoff (32 min × 1.5)


class ShiftedClock:
    def __init__(self):
        self.shift = 0.0

    def now(self) -> float:
        return time.time() + self.shift


async def main(port: int) -> None:
    clock = ShiftedClock()
    app = create_app(Settings.load(), clock=clock)
    loop = asyncio.get_running_loop()

    def advance() -> None:
        clock.shift += SHIFT_SECONDS
        app.state.services.webhooks.wake()

    loop.add_signal_handler(signal.SIGUSR1, advance)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    await server.serve()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
