"""The coordination layers' rows (semvec clusters, regions, observer, network), written once for both stores.

`CoordinationRows` is `tx.coordination`: every method runs inside the tenant's mutation, on the writer's
connection, and touches only the transaction's tenant. A store subclasses it with `_rows` (a query) and `_do`
(a writing statement) and its parameter mark; the SQL below is the same on SQLite and PostgreSQL (both accept
`ON CONFLICT … DO NOTHING / DO UPDATE` and scalar sub-queries in `DELETE`). `seq` is the creation order that
lists follow ("creation order", §3); a tenant's mutations are serialised, so it is also commit order.
"""

from __future__ import annotations

from ..engine import values
from . import session_rows
from ..engine.coordination.records import Anomaly, Cluster, DriftEvent, Observer, Realignment, Region

EVENTS_KEPT = 1000  # per region (§6.9)
ANOMALIES_KEPT = 1000  # per tenant (§6.9)

_CLUSTER = "id, name, aggregation_mode, coupling_factor, drift_exempt, created_at"
_REGION = "id, name, meta_session_id, consensus_threshold, vote_window_seconds, created_at"
_EVENT = "cluster_id, region_id, drift_score, drift_phase, timestamp"
_REALIGNMENT = ("id, region_id, timestamp, voted_cluster_ids, eligible_cluster_count, ratio, consensus_threshold,"
                " sessions_updated")
_OBSERVER = "id, meta_session_id, sample_interval_seconds, last_sample_at, created_at"
_ANOMALY = "id, timestamp, anomaly_type, affected_cluster_ids, description, severity"


def _json(value) -> str:
    return values.encode(value).decode()


class CoordinationRows:
    """`tx.coordination` (subclassed per store)."""

    mark = "?"

    def __init__(self, tenant: str):
        self.tenant = tenant

    def _rows(self, sql: str, params: tuple) -> list[tuple]:
        raise NotImplementedError

    def _do(self, sql: str, params: tuple) -> None:
        """Run a writing statement."""
        raise NotImplementedError

    def _count(self, sql: str, params: tuple) -> int:
        """Run a writing statement; return the number of rows it changed."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.mark)

    def _q(self, sql: str, *params) -> list[tuple]:
        return self._rows(self._sql(sql), (self.tenant, *params))

    def _w(self, sql: str, *params) -> None:
        self._do(self._sql(sql), (self.tenant, *params))

    def _wc(self, sql: str, *params) -> int:
        return self._count(self._sql(sql), (self.tenant, *params))

    # clusters and members

    def insert_cluster(self, c: Cluster) -> None:
        self._w(f"INSERT INTO semvec_clusters (tenant, {_CLUSTER}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                c.id, c.name, c.aggregation_mode, c.coupling_factor, c.drift_exempt, c.created_at)

    def cluster(self, cluster_id: str) -> Cluster | None:
        rows = self._q(f"SELECT {_CLUSTER} FROM semvec_clusters WHERE tenant = ? AND id = ?", cluster_id)
        return _cluster(rows[0]) if rows else None

    def clusters(self) -> list[tuple[Cluster, int]]:
        """Every cluster with its member count, in creation order."""
        rows = self._q(f"SELECT {_CLUSTER}, (SELECT count(*) FROM semvec_cluster_members m WHERE m.tenant = c.tenant"
                       " AND m.cluster_id = c.id) FROM semvec_clusters c WHERE tenant = ? ORDER BY seq")
        return [(_cluster(r[:6]), int(r[6])) for r in rows]

    def delete_cluster(self, cluster_id: str) -> bool:
        """The cluster, its member set and its membership in every region."""
        self._w("DELETE FROM semvec_cluster_members WHERE tenant = ? AND cluster_id = ?", cluster_id)
        self._w("DELETE FROM semvec_region_clusters WHERE tenant = ? AND cluster_id = ?", cluster_id)
        return self._wc("DELETE FROM semvec_clusters WHERE tenant = ? AND id = ?", cluster_id) > 0

    def members(self, cluster_id: str) -> list[str]:
        return [r[0] for r in self._q("SELECT session_id FROM semvec_cluster_members WHERE tenant = ?"
                                      " AND cluster_id = ? ORDER BY seq", cluster_id)]

    def member_count(self, cluster_id: str) -> int:
        return int(self._q("SELECT count(*) FROM semvec_cluster_members WHERE tenant = ? AND cluster_id = ?",
                           cluster_id)[0][0])

    def add_member(self, cluster_id: str, session_id: str) -> None:
        self._w("INSERT INTO semvec_cluster_members (tenant, cluster_id, session_id) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING", cluster_id, session_id)

    def remove_member(self, cluster_id: str, session_id: str) -> bool:
        return self._wc("DELETE FROM semvec_cluster_members WHERE tenant = ? AND cluster_id = ? AND session_id = ?",
                       cluster_id, session_id) > 0

    def member_sessions(self, cluster_id: str) -> list:
        """The session rows of the cluster's members that exist, in membership order: one statement, where a
        row at a time would cost a round trip each (PostgreSQL)."""
        cols = ", ".join("s." + c for c in session_rows.SESSION_COLUMNS)
        rows = self._q(f"SELECT {cols} FROM semvec_cluster_members m JOIN semvec_sessions s ON s.tenant = m.tenant"
                       " AND s.session_id = m.session_id WHERE m.tenant = ? AND m.cluster_id = ? ORDER BY m.seq",
                       cluster_id)
        return [session_rows.session_of(r) for r in rows]

    def clusters_of_member(self, session_id: str) -> list[str]:
        return [r[0] for r in self._q("SELECT cluster_id FROM semvec_cluster_members WHERE tenant = ?"
                                      " AND session_id = ? ORDER BY seq", session_id)]

    # regions, their clusters, drift events and realignments

    def insert_region(self, r: Region) -> None:
        self._w(f"INSERT INTO semvec_regions (tenant, {_REGION}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                r.id, r.name, r.meta_session_id, r.consensus_threshold, r.vote_window_seconds, r.created_at)

    def region(self, region_id: str) -> Region | None:
        rows = self._q(f"SELECT {_REGION} FROM semvec_regions WHERE tenant = ? AND id = ?", region_id)
        return Region(*rows[0]) if rows else None

    def regions(self) -> list[tuple[Region, int]]:
        """Every region with its cluster count, in creation order."""
        rows = self._q(f"SELECT {_REGION}, (SELECT count(*) FROM semvec_region_clusters m WHERE m.tenant = r.tenant"
                       " AND m.region_id = r.id) FROM semvec_regions r WHERE tenant = ? ORDER BY seq")
        return [(Region(*r[:6]), int(r[6])) for r in rows]

    def delete_region(self, region_id: str) -> bool:
        """The region, its cluster set, events, realignments and observer registration."""
        for table in ("semvec_region_clusters", "semvec_drift_events", "semvec_realignments",
                      "semvec_observer_regions"):
            self._w(f"DELETE FROM {table} WHERE tenant = ? AND region_id = ?", region_id)
        return self._wc("DELETE FROM semvec_regions WHERE tenant = ? AND id = ?", region_id) > 0

    def region_clusters(self, region_id: str) -> list[str]:
        return [r[0] for r in self._q("SELECT cluster_id FROM semvec_region_clusters WHERE tenant = ?"
                                      " AND region_id = ? ORDER BY seq", region_id)]

    def region_cluster_count(self, region_id: str) -> int:
        return int(self._q("SELECT count(*) FROM semvec_region_clusters WHERE tenant = ? AND region_id = ?",
                           region_id)[0][0])

    def add_region_cluster(self, region_id: str, cluster_id: str) -> None:
        self._w("INSERT INTO semvec_region_clusters (tenant, region_id, cluster_id) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING", region_id, cluster_id)

    def remove_region_cluster(self, region_id: str, cluster_id: str) -> bool:
        return self._wc("DELETE FROM semvec_region_clusters WHERE tenant = ? AND region_id = ? AND cluster_id = ?",
                       region_id, cluster_id) > 0

    def regions_of_cluster(self, cluster_id: str) -> list[str]:
        return [r[0] for r in self._q("SELECT region_id FROM semvec_region_clusters WHERE tenant = ?"
                                      " AND cluster_id = ? ORDER BY seq", cluster_id)]

    def insert_event(self, e: DriftEvent) -> None:
        """Append, keeping the region's newest EVENTS_KEPT."""
        self._w(f"INSERT INTO semvec_drift_events (tenant, {_EVENT}) VALUES (?, ?, ?, ?, ?, ?)",
                e.cluster_id, e.region_id, e.drift_score, e.drift_phase, e.timestamp)
        self._w("DELETE FROM semvec_drift_events WHERE tenant = ? AND region_id = ? AND seq <= (SELECT seq FROM"
                " semvec_drift_events WHERE tenant = ? AND region_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                e.region_id, self.tenant, e.region_id, EVENTS_KEPT)

    def events(self, region_id: str, limit: int) -> list[DriftEvent]:
        """The newest `limit` events, oldest first."""
        rows = self._q(f"SELECT {_EVENT} FROM semvec_drift_events WHERE tenant = ? AND region_id = ?"
                       " ORDER BY seq DESC LIMIT ?", region_id, limit)
        return [DriftEvent(*r) for r in reversed(rows)]

    def voted_clusters(self, region_id: str, since: float) -> set[str]:
        """Clusters with an event in the region at or after `since`."""
        return {r[0] for r in self._q("SELECT DISTINCT cluster_id FROM semvec_drift_events WHERE tenant = ?"
                                      " AND region_id = ? AND timestamp >= ?", region_id, since)}

    def insert_realignment(self, r: Realignment) -> None:
        self._w(f"INSERT INTO semvec_realignments (tenant, {_REALIGNMENT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                r.realignment_id, r.region_id, r.timestamp, _json(r.voted_cluster_ids), r.eligible_cluster_count,
                r.ratio, r.consensus_threshold, r.sessions_updated)

    def realignments(self, region_id: str, limit: int) -> list[Realignment]:
        """The newest `limit` realignments, oldest first."""
        rows = self._q(f"SELECT {_REALIGNMENT} FROM semvec_realignments WHERE tenant = ? AND region_id = ?"
                       " ORDER BY seq DESC LIMIT ?", region_id, limit)
        return [_realignment(r) for r in reversed(rows)]

    def realignment_count(self, region_id: str) -> int:
        return int(self._q("SELECT count(*) FROM semvec_realignments WHERE tenant = ? AND region_id = ?",
                           region_id)[0][0])

    # the observer

    def observer(self) -> Observer | None:
        rows = self._q(f"SELECT {_OBSERVER} FROM semvec_observers WHERE tenant = ?")
        return Observer(*rows[0]) if rows else None

    def insert_observer(self, o: Observer) -> None:
        self._w(f"INSERT INTO semvec_observers (tenant, {_OBSERVER}) VALUES (?, ?, ?, ?, ?, ?)",
                o.observer_id, o.meta_session_id, o.sample_interval_seconds, o.last_sample_at, o.created_at)

    def sampled(self, at: float) -> None:
        self._do(self._sql("UPDATE semvec_observers SET last_sample_at = ? WHERE tenant = ?"), (at, self.tenant))

    def observed_regions(self) -> list[str]:
        return [r[0] for r in self._q("SELECT region_id FROM semvec_observer_regions WHERE tenant = ? ORDER BY seq")]

    def register_region(self, region_id: str) -> None:
        self._w("INSERT INTO semvec_observer_regions (tenant, region_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                region_id)

    def unregister_region(self, region_id: str) -> bool:
        return self._wc("DELETE FROM semvec_observer_regions WHERE tenant = ? AND region_id = ?", region_id) > 0

    def insert_anomalies(self, anomalies: list[Anomaly]) -> None:
        """Append in list order, keeping the tenant's newest ANOMALIES_KEPT."""
        for a in anomalies:
            self._w(f"INSERT INTO semvec_anomalies (tenant, {_ANOMALY}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    a.anomaly_id, a.timestamp, a.anomaly_type, _json(a.affected_cluster_ids), a.description,
                    a.severity)
        if anomalies:
            self._w("DELETE FROM semvec_anomalies WHERE tenant = ? AND seq <= (SELECT seq FROM semvec_anomalies"
                    " WHERE tenant = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)", self.tenant, ANOMALIES_KEPT)

    def anomalies(self, limit: int) -> list[Anomaly]:
        """The newest `limit`, newest first."""
        rows = self._q(f"SELECT {_ANOMALY} FROM semvec_anomalies WHERE tenant = ? ORDER BY seq DESC LIMIT ?", limit)
        return [_anomaly(r) for r in rows]

    def anomaly_count(self) -> int:
        return int(self._q("SELECT count(*) FROM semvec_anomalies WHERE tenant = ?")[0][0])

    def clear_anomalies(self) -> int:
        return self._wc("DELETE FROM semvec_anomalies WHERE tenant = ?")

    # the network: trust scores and the active user

    def trust_scores(self) -> dict[str, float]:
        """Proposer session → trust, in first-proposal order."""
        return {r[0]: float(r[1]) for r in self._q("SELECT session_id, trust FROM semvec_trust_scores"
                                                    " WHERE tenant = ? ORDER BY seq")}

    def set_trust(self, session_id: str, trust: float) -> None:
        self._w("INSERT INTO semvec_trust_scores (tenant, session_id, trust) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant, session_id) DO UPDATE SET trust = excluded.trust", session_id, trust)

    def active_user(self) -> str | None:
        rows = self._q("SELECT user_id FROM semvec_active_users WHERE tenant = ?")
        return rows[0][0] if rows else None

    def set_active_user(self, user_id: str) -> None:
        self._w("INSERT INTO semvec_active_users (tenant, user_id) VALUES (?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET user_id = excluded.user_id", user_id)

    # sessions that go away

    def forget_session(self, session_id: str) -> None:
        """A deleted session leaves every member set and loses its trust score (§5.5)."""
        self._w("DELETE FROM semvec_cluster_members WHERE tenant = ? AND session_id = ?", session_id)
        self._w("DELETE FROM semvec_trust_scores WHERE tenant = ? AND session_id = ?", session_id)

    def owns_session(self, session_id: str) -> bool:
        """Whether the session backs a cluster or is a region's or the observer's meta-session."""
        return bool(self._q(
            "SELECT 1 FROM semvec_clusters WHERE tenant = ? AND id = ?"
            " UNION ALL SELECT 1 FROM semvec_regions WHERE tenant = ? AND meta_session_id = ?"
            " UNION ALL SELECT 1 FROM semvec_observers WHERE tenant = ? AND meta_session_id = ?",
            session_id, self.tenant, session_id, self.tenant, session_id))


def _cluster(r) -> Cluster:
    return Cluster(r[0], r[1], r[2], float(r[3]), bool(r[4]), float(r[5]))


def _realignment(r) -> Realignment:
    return Realignment(r[0], r[1], float(r[2]), values.decode(r[3]), int(r[4]), float(r[5]), float(r[6]), int(r[7]))


def _anomaly(r) -> Anomaly:
    return Anomaly(r[0], float(r[1]), r[2], values.decode(r[3]), r[4], float(r[5]))
