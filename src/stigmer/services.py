"""What the front doors are given: the settings and the engine's capabilities, built once at start-up."""

from __future__ import annotations

import dataclasses

from .clock import Clock
from .config import Settings
from .engine.changes import ChangeHub
from .engine.idempotency import Idempotency
from .engine.keys import Keys
from .engine.kv import KV
from .engine.leases import LeaseLimits, Leases
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
    leases: Leases = None  # type: ignore[assignment]  # built from the others when not given
    idempotency: Idempotency = None  # type: ignore[assignment]  # likewise

    def __post_init__(self) -> None:
        if self.leases is None:
            s = self.settings
            self.leases = Leases(self.store, self.hub, LeaseLimits(
                s.lease_default_ttl_seconds, s.lease_max_ttl_seconds, s.lease_max_wait_seconds), self.kv.limits)
        if self.idempotency is None:
            self.idempotency = Idempotency(self.store, self.settings.idempotency_retention_seconds)
