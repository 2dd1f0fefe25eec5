"""What the front doors are given: the settings and the engine's capabilities, built once at start-up."""

from __future__ import annotations

import dataclasses

from .clock import Clock
from .config import Settings
from .engine.changes import ChangeHub
from .engine.keys import Keys
from .engine.kv import KV
from .store.base import Store
from .support.ratelimit import RateLimiter


@dataclasses.dataclass
class Services:
    settings: Settings
    clock: Clock
    store: Store
    kv: KV
    hub: ChangeHub
    keys: Keys
    limiter: RateLimiter
