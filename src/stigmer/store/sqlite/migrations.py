"""Versioned schema migrations for the SQLite store. Append new steps; never edit an applied one."""

from __future__ import annotations

import sqlite3
import time
from . import memory_index, search_index

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE entries (
            tenant TEXT NOT NULL,
            ns TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB NOT NULL,
            version INTEGER NOT NULL,
            create_rev INTEGER NOT NULL,
            mod_rev INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            expires_at REAL,
            PRIMARY KEY (tenant, ns, key)
        ) WITHOUT ROWID;
        CREATE INDEX entries_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;

        CREATE TABLE changes (
            tenant TEXT NOT NULL,
            rev INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            ns TEXT NOT NULL,
            key TEXT NOT NULL,
            type TEXT NOT NULL,
            value BLOB,
            prev_value BLOB,
            version INTEGER NOT NULL,
            ts REAL NOT NULL,
            PRIMARY KEY (tenant, rev, seq)
        ) WITHOUT ROWID;
        CREATE INDEX changes_by_key ON changes (tenant, ns, key, rev);
        CREATE INDEX changes_by_ts ON changes (ts);

        CREATE TABLE tenant_revisions (
            tenant TEXT PRIMARY KEY,
            rev INTEGER NOT NULL,
            compacted_rev INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        """
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO tenants (id, created_at) SELECT tenant, 0 FROM tenant_revisions;

        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            digest BLOB NOT NULL UNIQUE,
            tenant TEXT NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            prefixes TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            last_used_at REAL,
            revoked_at REAL
        ) WITHOUT ROWID;
        CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
        """,
    ),
    (
        3,
        # One row rewritten by the readiness probe: a real durable write that touches no data.
        "CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL)",
    ),
    (
        4,
        # One row per resource: its newest lease, whose token is the highest ever issued (docs/leases.md).
        """
        CREATE TABLE leases (
            tenant TEXT NOT NULL,
            resource TEXT NOT NULL,
            id TEXT NOT NULL,
            holder TEXT NOT NULL,
            token INTEGER NOT NULL,
            created_at REAL NOT NULL,
            renewed_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            released_at REAL,
            PRIMARY KEY (tenant, resource)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX leases_by_id ON leases (tenant, id);
        """,
    ),
    (
        5,
        # The append-only state event log (engine/states.py), never compacted. A rowid table: rows hold
        # documents of up to megabytes. The key index covers the "newest event of a key" probes.
        """
        CREATE TABLE state_events (
            tenant TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            id TEXT NOT NULL,
            state_key TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            data BLOB,
            metadata BLOB,
            tags BLOB NOT NULL,
            idempotency_key TEXT,
            created_at INTEGER NOT NULL,
            state_created_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, sequence)
        );
        CREATE INDEX state_events_by_key ON state_events (tenant, state_key, sequence, created_at);
        CREATE UNIQUE INDEX state_events_by_id ON state_events (tenant, id)
        """,
    ),
    (
        6,
        # Capability tokens (engine/tokens.py); `lineage` ranges find a token's descendants.
        """
        CREATE TABLE capability_tokens (
            id TEXT PRIMARY KEY,
            digest BLOB NOT NULL UNIQUE,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            prefixes TEXT NOT NULL,
            parent_id TEXT,
            lineage TEXT NOT NULL,
            key_id TEXT,
            key_prefix TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            last_used_at REAL,
            revoked_at REAL
        );  -- a rowid table: the rowid is the creation order a listing follows
        CREATE INDEX capability_tokens_by_lineage ON capability_tokens (tenant, lineage);
        CREATE INDEX capability_tokens_by_tenant ON capability_tokens (tenant)
        """,
    ),
    (
        7,
        # Claims, their evidence (input order = pos) and every verification run (docs/claims.md). Times are
        # integer milliseconds; JSON columns are text as received (member order kept), NULL = absent.
        """
        CREATE TABLE claims (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            subject_type TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            statement TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID;
        CREATE INDEX claims_by_time ON claims (tenant, created_at, id);
        CREATE INDEX claims_by_subject ON claims (tenant, subject_type, subject_id, created_at, id);

        CREATE TABLE claim_evidence (
            tenant TEXT NOT NULL,
            claim_id TEXT NOT NULL,
            pos INTEGER NOT NULL,
            id TEXT NOT NULL,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            data TEXT,
            hash TEXT,
            json_path TEXT,
            expected_value TEXT,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, claim_id, pos)
        ) WITHOUT ROWID;

        CREATE TABLE claim_runs (
            tenant TEXT NOT NULL,
            claim_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            id TEXT NOT NULL,
            status TEXT NOT NULL,
            results TEXT NOT NULL,
            PRIMARY KEY (tenant, claim_id, created_at, id)
        ) WITHOUT ROWID
        """,
    ),
    (
        8,
        # One row per (tenant, scope, Idempotency-Key): a reservation, then the first answer (docs/idempotency.md).
        """
        CREATE TABLE idempotency (
            tenant TEXT NOT NULL,
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint BLOB NOT NULL,
            state TEXT NOT NULL,
            status INTEGER NOT NULL,
            body BLOB NOT NULL,
            headers TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            owner TEXT NOT NULL,
            PRIMARY KEY (tenant, scope, key)
        ) WITHOUT ROWID;
        CREATE INDEX idempotency_expiry ON idempotency (expires_at);
        """,
    ),
    (
        9,
        # Conversations, their messages and tags (engine/conversations.py). Messages keep a rowid and plain
        # text content, so a later migration can add an FTS5 index over them (external content).
        """
        CREATE TABLE conversations (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            external_id TEXT,
            title TEXT,
            metadata TEXT,
            message_count INTEGER NOT NULL,
            token_count INTEGER NOT NULL,
            total_tokens INTEGER NOT NULL,
            total_cost_microdollars INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX conversations_by_external_id ON conversations (tenant, external_id);
        CREATE INDEX conversations_by_update ON conversations (tenant, updated_at, id);

        CREATE TABLE conversation_tags (
            tenant TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (tenant, conversation_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX conversation_tags_by_tag ON conversation_tags (tenant, tag, conversation_id);

        CREATE TABLE conversation_messages (
            tenant TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            id TEXT NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            metadata TEXT,
            token_count INTEGER NOT NULL,
            model TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost_microdollars INTEGER,
            parent_message_id TEXT,
            observation_type TEXT,
            start_time INTEGER,
            end_time INTEGER,
            status TEXT,
            level TEXT,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, conversation_id, position)
        );
        CREATE UNIQUE INDEX conversation_messages_by_id ON conversation_messages (tenant, id);
        """,
    ),
    (10, search_index.SCHEMA),  # docs/search.md; then search_index.backfill
    (
        11,
        # Traces and analytics (engine/traces.py, engine/analytics.py): the traces list probes a conversation's
        # observations in a partial index; analytics read a project's conversations by creation time, with
        # the figures they add up in the index itself.
        """
        CREATE INDEX conversation_messages_observed ON conversation_messages (tenant, conversation_id)
            WHERE observation_type IS NOT NULL;
        CREATE INDEX conversations_by_creation ON conversations (tenant, created_at, message_count, token_count);
        """,
    ),
    (
        12,
        # The durable job queue (engine/jobs.py, docs/jobs.md): due jobs are found oldest first, a tenant's
        # jobs are listed newest first, finished ones are purged by age.
        """
        CREATE TABLE jobs (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            result TEXT,
            error TEXT,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            created_at REAL NOT NULL,
            started_at REAL,
            completed_at REAL,
            claimed_until REAL,
            claim TEXT,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID;
        CREATE INDEX jobs_unfinished ON jobs (created_at) WHERE status IN ('pending', 'running');
        CREATE INDEX jobs_finished ON jobs (created_at) WHERE status IN ('completed', 'failed');
        CREATE INDEX jobs_by_tenant ON jobs (tenant, created_at);
        """,
    ),
    (
        13,
        # The webhook outbox (engine/webhooks.py): workers find due events by next attempt; stats read a
        # tenant's counts per status and its oldest pending event; a subject delete finds a subject's events.
        """
        CREATE TABLE webhook_events (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            event TEXT NOT NULL,
            tenant_id TEXT,
            data TEXT NOT NULL,
            subject_id TEXT,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            created_at REAL NOT NULL,
            next_attempt_at REAL,
            last_attempt_at REAL,
            last_error TEXT,
            http_status INTEGER,
            delivered_at REAL,
            claim TEXT
        );
        CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at) WHERE status = 'pending';
        CREATE INDEX webhook_events_by_status ON webhook_events (tenant, status, created_at);
        CREATE INDEX webhook_events_by_subject ON webhook_events (tenant, subject_id) WHERE subject_id IS NOT NULL;
        """,
    ),
    (
        14,
        # The Statewave memory engine (docs/memory.md): `tenant` is the Stigmer tenant, `tenant_id` the
        # Statewave tenant (NULL: written unscoped); `seq` breaks timestamp ties (§6.12). A compile reads a
        # subject's uncompiled episodes oldest first and its active memories newest first.
        """
        CREATE TABLE episodes (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            tenant_id TEXT,
            subject_id TEXT NOT NULL,
            source TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            metadata TEXT NOT NULL,
            provenance TEXT NOT NULL,
            session_id TEXT,
            created_at INTEGER NOT NULL,
            last_compiled_at INTEGER,
            UNIQUE (tenant, id)
        );
        CREATE INDEX episodes_by_subject ON episodes (tenant, subject_id, created_at, seq);
        CREATE INDEX episodes_uncompiled ON episodes (tenant, subject_id, created_at, seq)
            WHERE last_compiled_at IS NULL;
        CREATE TABLE memories (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            tenant_id TEXT,
            subject_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            content TEXT NOT NULL,
            summary TEXT NOT NULL,
            confidence REAL NOT NULL,
            valid_from INTEGER NOT NULL,
            valid_to INTEGER,
            source_episode_ids TEXT NOT NULL,
            metadata TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE INDEX memories_by_subject ON memories (tenant, subject_id, created_at, seq);
        CREATE INDEX memories_active ON memories (tenant, subject_id, created_at, seq) WHERE status = 'active';
        """,
    ),
    (
        15,
        # Rate-limit windows shared by every process on the database (Statewave §6.11 `distributed`): one
        # counter per (bucket, window start); windows older than five minutes are purged.
        """
        CREATE TABLE rate_windows (
            bucket TEXT NOT NULL,
            window_start INTEGER NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (bucket, window_start)
        );
        CREATE INDEX rate_windows_by_start ON rate_windows (window_start);
        """,
    ),
    (16, memory_index.SCHEMA),  # memory search index and vectors (docs/memory.md); then memory_index.backfill
    (
        17,
        # The Statewave support layer (docs/memory.md, "Support"): one resolution per (Statewave tenant value,
        # subject, session), listed most recently updated first; one health-state record per (Statewave
        # tenant value, subject). NULL tenant values key as '' (a Statewave tenant id is never empty).
        """
        CREATE TABLE resolutions (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            tenant_id TEXT,
            subject_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            status TEXT NOT NULL,
            resolution_summary TEXT,
            resolved_at INTEGER,
            metadata TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE UNIQUE INDEX resolutions_by_session ON resolutions (tenant, subject_id, session_id, coalesce(tenant_id, ''));
        CREATE INDEX resolutions_by_update ON resolutions (tenant, subject_id, updated_at);
        CREATE TABLE health_states (
            tenant TEXT NOT NULL,
            tenant_id TEXT,
            subject_id TEXT NOT NULL,
            state TEXT NOT NULL,
            score INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX health_states_by_subject ON health_states (tenant, subject_id, coalesce(tenant_id, ''));
        """,
    ),
    (
        18,
        # Semantic sessions (docs/semantic-sessions.md): a session row (JSON state, float64 vector), its heads
        # (pending message, memory revision: a /v1/run that stores nothing writes only them), memories
        # (float32 embeddings; `seq` creation order, `rev` the memory revision a process's view catches up
        # from) and the literal entities.
        """
        CREATE TABLE semvec_sessions (
            tenant TEXT NOT NULL,
            session_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            vector BLOB,
            checksum TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, session_id)
        );
        CREATE TABLE semvec_session_heads (
            tenant TEXT NOT NULL,
            session_id TEXT NOT NULL,
            heads TEXT NOT NULL,
            checksum TEXT NOT NULL,
            PRIMARY KEY (tenant, session_id)
        );
        CREATE TABLE semvec_memories (
            tenant TEXT NOT NULL,
            session_id TEXT NOT NULL,
            id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            rev BIGINT NOT NULL,
            text TEXT NOT NULL,
            embedding BLOB NOT NULL,
            source TEXT NOT NULL,
            tier TEXT NOT NULL,
            importance DOUBLE PRECISION NOT NULL,
            access_count BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            created_turn BIGINT NOT NULL,
            last_access_turn BIGINT NOT NULL,
            hash TEXT NOT NULL,
            meta TEXT NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (tenant, session_id, id)
        );
        CREATE INDEX semvec_memories_by_seq ON semvec_memories (tenant, session_id, seq);
        CREATE INDEX semvec_memories_by_rev ON semvec_memories (tenant, session_id, rev);
        CREATE INDEX semvec_memories_by_hash ON semvec_memories (tenant, session_id, hash);
        CREATE TABLE semvec_entities (
            tenant TEXT NOT NULL,
            session_id TEXT NOT NULL,
            key TEXT NOT NULL,
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            context TEXT NOT NULL,
            importance DOUBLE PRECISION NOT NULL,
            access_count BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            last_access_at DOUBLE PRECISION,
            PRIMARY KEY (tenant, session_id, key)
        );
        """,
    ),
    (
        20,
        # semvec clusters and regions (docs/semantic-coordination.md): membership sets, drift events (a region
        # keeps its newest 1,000) and realignment records. `seq` is creation order; vectors live in sessions.
        """
        CREATE TABLE semvec_clusters (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            aggregation_mode TEXT NOT NULL,
            coupling_factor REAL NOT NULL,
            drift_exempt INTEGER NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE TABLE semvec_cluster_members (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            cluster_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            UNIQUE (tenant, cluster_id, session_id)
        );
        CREATE INDEX semvec_cluster_members_by_session ON semvec_cluster_members (tenant, session_id);
        CREATE TABLE semvec_regions (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            meta_session_id TEXT NOT NULL,
            consensus_threshold REAL NOT NULL,
            vote_window_seconds REAL NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE INDEX semvec_regions_by_meta_session ON semvec_regions (tenant, meta_session_id);
        CREATE TABLE semvec_region_clusters (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            region_id TEXT NOT NULL,
            cluster_id TEXT NOT NULL,
            UNIQUE (tenant, region_id, cluster_id)
        );
        CREATE INDEX semvec_region_clusters_by_cluster ON semvec_region_clusters (tenant, cluster_id);
        CREATE TABLE semvec_drift_events (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            region_id TEXT NOT NULL,
            cluster_id TEXT NOT NULL,
            drift_score REAL NOT NULL,
            drift_phase TEXT NOT NULL,
            timestamp REAL NOT NULL
        );
        CREATE INDEX semvec_drift_events_by_region ON semvec_drift_events (tenant, region_id, seq);
        CREATE TABLE semvec_realignments (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            region_id TEXT NOT NULL,
            timestamp REAL NOT NULL,
            voted_cluster_ids TEXT NOT NULL,
            eligible_cluster_count INTEGER NOT NULL,
            ratio REAL NOT NULL,
            consensus_threshold REAL NOT NULL,
            sessions_updated INTEGER NOT NULL
        );
        CREATE INDEX semvec_realignments_by_region ON semvec_realignments (tenant, region_id, seq);
        """,
    ),
    (
        21,
        # the semvec observer (its registered regions, anomalies: newest 1,000 per tenant) and the network's
        # trust scores and active user partition, per tenant.
        """
        CREATE TABLE semvec_observers (
            tenant TEXT PRIMARY KEY,
            id TEXT NOT NULL,
            meta_session_id TEXT NOT NULL,
            sample_interval_seconds REAL NOT NULL,
            last_sample_at REAL,
            created_at REAL NOT NULL
        );
        CREATE TABLE semvec_observer_regions (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            region_id TEXT NOT NULL,
            UNIQUE (tenant, region_id)
        );
        CREATE TABLE semvec_anomalies (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            timestamp REAL NOT NULL,
            anomaly_type TEXT NOT NULL,
            affected_cluster_ids TEXT NOT NULL,
            description TEXT NOT NULL,
            severity REAL NOT NULL
        );
        CREATE INDEX semvec_anomalies_by_tenant ON semvec_anomalies (tenant, seq);
        CREATE TABLE semvec_trust_scores (
            seq INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            session_id TEXT NOT NULL,
            trust REAL NOT NULL,
            UNIQUE (tenant, session_id)
        );
        CREATE TABLE semvec_active_users (
            tenant TEXT PRIMARY KEY,
            user_id TEXT NOT NULL
        );
        """,
    ),
    (
        23,
        # The newest memories of a scope (query-driven context, bench/results/memory.md "Latency, third round"):
        # an index in NEWEST_FIRST order stops after the rows asked for, where the scope index sorted them all.
        # The scope index stays (migrations only add: an older replica may still plan with it).
        """
        CREATE INDEX memory_index_rows_newest ON memory_index_rows (tenant, subject_id, kind, created_at DESC, seq);
        """,
    ),
    (
        27,
        # Settled events by age, for the retention purge (docs/webhooks.md).
        """
        CREATE INDEX webhook_events_settled ON webhook_events (created_at) WHERE status <> 'pending';
        """,
    ),
]

# Python work a step does after its SQL, in the same transaction: filling what it made from existing rows.
AFTER = {10: search_index.backfill, 16: memory_index.backfill}


def _statements(script: str):
    """The script's statements; a `;` inside one (a trigger's body) does not end it."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction; return the schema version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, script in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            if version in AFTER:
                AFTER[version](conn)
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(v for v, _ in MIGRATIONS)
