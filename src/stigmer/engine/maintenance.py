"""Background upkeep: expire due keys (emitting `expire` changes), purge expired idempotency records and
compact old change history."""

from __future__ import annotations

import asyncio
import logging

from ..store.base import Store
from .errors import StorageFull, StorageUnavailable
from .idempotency import purge_expired
from .kv import sweep_expired

log = logging.getLogger("stigmer.maintenance")

SWEEP_BATCH = 500


async def sweep_once(store: Store) -> int:
    """Expire every due key now, tenant by tenant; return how many."""
    total = 0
    for tenant in await store.kv.due_tenants(store.clock.now(), SWEEP_BATCH):
        while True:
            n = await store.submit(tenant, lambda tx: sweep_expired(tx, SWEEP_BATCH))
            total += n
            if n < SWEEP_BATCH:
                break
    return total


async def run_sweeper(store: Store, interval: float) -> None:
    skipping = False  # a storage fault is logged once, not every round (4 a second by default)
    while True:
        try:
            await sweep_once(store)
            await purge_expired(store)
            skipping = False
        except (StorageFull, StorageUnavailable) as exc:
            if not skipping:
                log.warning("expiry sweeps skipped until storage recovers: %s", exc.message)
            skipping = True
        except Exception:  # keep sweeping; the next round retries
            log.exception("expiry sweep failed")
        await asyncio.sleep(interval)


async def run_compactor(store: Store, retention: float, interval: float) -> None:
    while True:
        try:
            removed = await store.log.compact(store.clock.now() - retention)
            if removed:
                log.info("compacted %d change rows", removed)
        except (StorageFull, StorageUnavailable) as exc:
            log.warning("compaction skipped: %s", exc.message)
        except Exception:
            log.exception("compaction failed")
        await asyncio.sleep(interval)
