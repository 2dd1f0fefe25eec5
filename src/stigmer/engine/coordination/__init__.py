"""The semvec coordination layers above sessions: clusters → regions → an observer, and the network operations
(semvec spec §5.22–§5.50, §6.8, §6.9, §6.14; docs/semantic-coordination.md).

`Coordination` is the facade the front door calls: each method is one mutation of the tenant (reads too, so a
view is one consistent snapshot of the sessions it aggregates), run by the store under the tenant's
serialisation, answered after commit, on any replica. The mutation functions are the `*_in` functions of the
modules beside this one; `regions.publish_drift_in` is what a drifting /v1/run turn calls inside its own
mutation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NotFound
from . import adapter, clusters, network, observer, regions
from .ports import SessionFacts, SessionPort
from .records import Anomaly, Cluster, DriftEvent, Observer, Realignment, Region

__all__ = ["Coordination", "SessionFacts", "SessionPort", "Anomaly", "Cluster", "DriftEvent", "Observer",
           "Realignment", "Region"]


class Coordination:
    def __init__(self, store, engine):
        self._store = store
        self.engine = engine  # engine/sessions' Sessions
        self.sessions: SessionPort = adapter.hook(engine)

    async def _in(self, tenant: str, fn) -> Any:
        return await self._store.submit(tenant, fn)

    # clusters

    async def create_cluster(self, tenant: str, name: str, mode: str, coupling: float, exempt: bool) -> Cluster:
        return await self._in(tenant, lambda tx: clusters.create_in(tx, self.sessions, name, mode, coupling, exempt))

    async def clusters(self, tenant: str) -> list[tuple[Cluster, int]]:
        return await self._in(tenant, lambda tx: tx.coordination.clusters())

    async def cluster(self, tenant: str, cluster_id: str) -> clusters.ClusterView:
        return await self._in(tenant, lambda tx: clusters.view_in(tx, self.sessions, cluster_id))

    async def delete_cluster(self, tenant: str, cluster_id: str) -> None:
        await self._in(tenant, lambda tx: clusters.delete_in(tx, self.sessions, cluster_id))

    async def add_member(self, tenant: str, cluster_id: str, session_id: str) -> None:
        await self._in(tenant, lambda tx: clusters.add_member_in(tx, self.sessions, cluster_id, session_id))

    async def remove_member(self, tenant: str, cluster_id: str, session_id: str) -> None:
        await self._in(tenant, lambda tx: clusters.remove_member_in(tx, cluster_id, session_id))

    async def cluster_store(self, tenant: str, cluster_id: str, message: str, response: str,
                            dedup_threshold: float | None) -> dict:
        chunk = clusters.chunk_of(message, response)
        x = (await self.engine.embed([chunk]))[0]
        return await self._in(tenant, lambda tx: clusters.store_in(tx, self.sessions, cluster_id, chunk, x,
                                                                   dedup_threshold))

    async def cluster_run(self, tenant: str, cluster_id: str, message: str, response: str | None,
                          short_circuit_threshold: float, reset_context: bool) -> dict:
        """/v1/run against the backing session; its drift reaches the cluster's regions through the drift hook
        (Decision D23)."""
        await self._in(tenant, lambda tx: clusters.existing(tx, cluster_id))
        return await self.engine.run(tenant, message, cluster_id, response, short_circuit_threshold, reset_context)

    async def feedback(self, tenant: str, cluster_id: str) -> int:
        return await self._in(tenant, lambda tx: clusters.feedback_in(tx, self.sessions, cluster_id))

    # regions

    async def create_region(self, tenant: str, name: str, threshold: float, window: float) -> Region:
        return await self._in(tenant, lambda tx: regions.create_in(tx, self.sessions, name, threshold, window))

    async def regions(self, tenant: str) -> list[tuple[Region, int]]:
        return await self._in(tenant, lambda tx: tx.coordination.regions())

    async def region(self, tenant: str, region_id: str) -> regions.RegionView:
        return await self._in(tenant, lambda tx: regions.view_in(tx, region_id))

    async def delete_region(self, tenant: str, region_id: str) -> None:
        await self._in(tenant, lambda tx: regions.delete_in(tx, self.sessions, region_id))

    async def attach(self, tenant: str, region_id: str, cluster_id: str) -> None:
        await self._in(tenant, lambda tx: regions.attach_in(tx, region_id, cluster_id))

    async def detach(self, tenant: str, region_id: str, cluster_id: str) -> None:
        await self._in(tenant, lambda tx: regions.detach_in(tx, region_id, cluster_id))

    async def events(self, tenant: str, region_id: str, limit: int) -> list[DriftEvent]:
        return await self._in(tenant, lambda tx: regions.events_in(tx, region_id, limit))

    # the observer

    async def create_observer(self, tenant: str, interval: float, region_ids: list[str]) -> tuple[Observer, int]:
        return await self._in(tenant, lambda tx: observer.create_in(tx, self.sessions, interval, region_ids))

    async def observer_summary(self, tenant: str) -> observer.Summary:
        return await self._in(tenant, observer.summary_in)

    async def sample(self, tenant: str) -> observer.Sample:
        return await self._in(tenant, lambda tx: observer.sample_in(tx, self.sessions))

    async def anomalies(self, tenant: str, limit: int) -> list[Anomaly]:
        return await self._in(tenant, lambda tx: observer.anomalies_in(tx, limit))

    async def clear_anomalies(self, tenant: str) -> int:
        return await self._in(tenant, observer.clear_in)

    async def register_region(self, tenant: str, region_id: str) -> None:
        await self._in(tenant, lambda tx: observer.register_in(tx, region_id))

    async def unregister_region(self, tenant: str, region_id: str) -> None:
        await self._in(tenant, lambda tx: observer.unregister_in(tx, region_id))

    # the network

    async def transfer(self, tenant: str, source_id: str, target_id: str, max_weight: float) -> float:
        return await self._in(tenant, lambda tx: network.transfer_in(tx, self.sessions, source_id, target_id,
                                                                     max_weight))

    async def switch_user(self, tenant: str, user_id: str) -> tuple[str, str]:
        return await self._in(tenant, lambda tx: network.switch_in(tx, self.sessions, user_id))

    async def active_user(self, tenant: str) -> str:
        return await self._in(tenant, network.active_in)

    async def serialize_user(self, tenant: str, user_id: str) -> dict:
        """The partition's export state_dict (§5.48), read as one snapshot like any export."""
        from ..sessions import portable

        sid = await self._in(tenant, lambda tx: network.partition_in(tx, self.sessions, user_id))
        try:
            return await portable.export(self.engine, tenant, sid)
        except NotFound:  # deleted since
            raise NotFound(network.partition_missing(user_id)) from None

    async def consensus(self, tenant: str, proposer_id: str, target: np.ndarray) -> tuple[bool, dict[str, float]]:
        """`target`: a unit vector (`engine.vector` or `engine.text_vector` checked it)."""
        return await self._in(tenant, lambda tx: network.consensus_in(tx, self.sessions, proposer_id, target))

    async def trust_scores(self, tenant: str) -> dict[str, float]:
        return await self._in(tenant, network.trust_in)

