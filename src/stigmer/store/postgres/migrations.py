"""Versioned schema migrations for the PostgreSQL store. Append new steps; never edit an applied one.

Each step runs in its own transaction under one advisory lock, so replicas that start together apply
every step once: the second waits, then finds it applied. Names and keys are `COLLATE "C"` so that
ORDER BY and prefix ranges follow key byte order, as on SQLite.
"""

from __future__ import annotations

import time

import psycopg

from . import memory_index, search_index

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE entries (
            tenant TEXT COLLATE "C" NOT NULL,
            ns TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            value BYTEA NOT NULL,
            version BIGINT NOT NULL,
            create_rev BIGINT NOT NULL,
            mod_rev BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            PRIMARY KEY (tenant, ns, key)
        );
        CREATE INDEX entries_expiry ON entries (tenant, expires_at) WHERE expires_at IS NOT NULL;

        CREATE TABLE changes (
            tenant TEXT COLLATE "C" NOT NULL,
            rev BIGINT NOT NULL,
            seq INTEGER NOT NULL,
            ns TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            type TEXT NOT NULL,
            value BYTEA,
            prev_value BYTEA,
            version BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, rev, seq)
        );
        CREATE INDEX changes_by_key ON changes (tenant, ns, key, rev);
        CREATE INDEX changes_by_ts ON changes (ts);

        CREATE TABLE tenant_revisions (
            tenant TEXT COLLATE "C" PRIMARY KEY,
            rev BIGINT NOT NULL,
            compacted_rev BIGINT NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE tenants (
            id TEXT COLLATE "C" PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL
        );

        CREATE TABLE api_keys (
            id TEXT COLLATE "C" PRIMARY KEY,
            digest BYTEA NOT NULL UNIQUE,
            tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL,
            scopes TEXT[] NOT NULL,
            prefixes TEXT[] NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            last_used_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION
        );
        CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
        """,
    ),
    (
        3,
        # One row rewritten by the readiness probe: a real durable write that touches no data.
        "CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at DOUBLE PRECISION NOT NULL)",
    ),
    (
        4,
        # One row per resource: its newest lease, whose token is the highest ever issued (docs/leases.md).
        """
        CREATE TABLE leases (
            tenant TEXT COLLATE "C" NOT NULL,
            resource TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            holder TEXT NOT NULL,
            token BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            renewed_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            released_at DOUBLE PRECISION,
            PRIMARY KEY (tenant, resource)
        );
        CREATE UNIQUE INDEX leases_by_id ON leases (tenant, id);
        """,
    ),
    (
        5,
        # The append-only state event log (engine/states.py), never compacted. BYTEA, not JSONB: the
        # documents keep their members in the order received. Keys are indexed by their MD5: a key of
        # 1024 characters can exceed the largest B-tree entry (2704 bytes).
        """
        CREATE TABLE state_events (
            tenant TEXT COLLATE "C" NOT NULL,
            sequence BIGINT NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            state_key TEXT COLLATE "C" NOT NULL,
            agent_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            data BYTEA,
            metadata BYTEA,
            tags BYTEA NOT NULL,
            idempotency_key TEXT,
            created_at BIGINT NOT NULL,
            state_created_at BIGINT NOT NULL,
            PRIMARY KEY (tenant, sequence)
        );
        CREATE INDEX state_events_by_key ON state_events (tenant, md5(state_key), sequence) INCLUDE (created_at);
        CREATE UNIQUE INDEX state_events_by_id ON state_events (tenant, id)
        """,
    ),
    (
        6,
        # Capability tokens (engine/tokens.py); `lineage` ranges find a token's descendants.
        """
        CREATE TABLE capability_tokens (
            id TEXT COLLATE "C" PRIMARY KEY,
            digest BYTEA NOT NULL UNIQUE,
            tenant TEXT COLLATE "C" NOT NULL,
            name TEXT NOT NULL,
            scopes TEXT[] NOT NULL,
            prefixes TEXT[] NOT NULL,
            parent_id TEXT COLLATE "C",
            lineage TEXT COLLATE "C" NOT NULL,
            key_id TEXT,
            key_prefix TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            last_used_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION,
            seq BIGINT GENERATED ALWAYS AS IDENTITY  -- the creation order a listing follows
        );
        CREATE INDEX capability_tokens_by_lineage ON capability_tokens (tenant, lineage);
        CREATE INDEX capability_tokens_by_tenant ON capability_tokens (tenant, seq)
        """,
    ),
    (
        7,
        # Claims, their evidence (input order = pos) and every verification run (docs/claims.md). Times are
        # integer milliseconds; JSON columns are text as received (member order kept; jsonb would not),
        # NULL = absent.
        """
        CREATE TABLE claims (
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            subject_type TEXT COLLATE "C" NOT NULL,
            subject_id TEXT COLLATE "C" NOT NULL,
            statement TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (tenant, id)
        );
        CREATE INDEX claims_by_time ON claims (tenant, created_at, id);
        CREATE INDEX claims_by_subject ON claims (tenant, subject_type, subject_id, created_at, id);

        CREATE TABLE claim_evidence (
            tenant TEXT COLLATE "C" NOT NULL,
            claim_id TEXT COLLATE "C" NOT NULL,
            pos INTEGER NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            data TEXT,
            hash TEXT,
            json_path TEXT,
            expected_value TEXT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (tenant, claim_id, pos)
        );

        CREATE TABLE claim_runs (
            tenant TEXT COLLATE "C" NOT NULL,
            claim_id TEXT COLLATE "C" NOT NULL,
            created_at BIGINT NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            status TEXT NOT NULL,
            results TEXT NOT NULL,
            PRIMARY KEY (tenant, claim_id, created_at, id)
        )
        """,
    ),
    (
        8,
        # One row per (tenant, scope, Idempotency-Key): a reservation, then the first answer (docs/idempotency.md).
        """
        CREATE TABLE idempotency (
            tenant TEXT COLLATE "C" NOT NULL,
            scope TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            fingerprint BYTEA NOT NULL,
            state TEXT NOT NULL,
            status INTEGER NOT NULL,
            body BYTEA NOT NULL,
            headers TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            owner TEXT NOT NULL,
            PRIMARY KEY (tenant, scope, key)
        );
        CREATE INDEX idempotency_expiry ON idempotency (expires_at);
        """,
    ),
    (
        9,
        # Conversations, their messages and tags (engine/conversations.py). Messages keep plain text content, so a
        # later migration can add a full-text index over them.
        """
        CREATE TABLE conversations (
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            external_id TEXT COLLATE "C",
            title TEXT,
            metadata TEXT,
            message_count BIGINT NOT NULL,
            token_count BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            total_cost_microdollars BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (tenant, id)
        );
        CREATE UNIQUE INDEX conversations_by_external_id ON conversations (tenant, external_id);
        CREATE INDEX conversations_by_update ON conversations (tenant, updated_at, id);

        CREATE TABLE conversation_tags (
            tenant TEXT COLLATE "C" NOT NULL,
            conversation_id TEXT COLLATE "C" NOT NULL,
            tag TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (tenant, conversation_id, tag)
        );
        CREATE INDEX conversation_tags_by_tag ON conversation_tags (tenant, tag, conversation_id);

        CREATE TABLE conversation_messages (
            tenant TEXT COLLATE "C" NOT NULL,
            conversation_id TEXT COLLATE "C" NOT NULL,
            position INTEGER NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            metadata TEXT,
            token_count BIGINT NOT NULL,
            model TEXT,
            input_tokens BIGINT,
            output_tokens BIGINT,
            cost_microdollars BIGINT,
            parent_message_id TEXT,
            observation_type TEXT,
            start_time BIGINT,
            end_time BIGINT,
            status TEXT,
            level TEXT,
            created_at BIGINT NOT NULL,
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
        CREATE INDEX conversations_by_creation ON conversations (tenant, created_at)
            INCLUDE (id, message_count, token_count);
        """,
    ),
    (
        12,
        # The durable job queue (engine/jobs.py, docs/jobs.md): due jobs are found oldest first, a tenant's
        # jobs are listed newest first, finished ones are purged by age.
        """
        CREATE TABLE jobs (
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            result TEXT,
            error TEXT,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            completed_at DOUBLE PRECISION,
            claimed_until DOUBLE PRECISION,
            claim TEXT,
            PRIMARY KEY (tenant, id)
        );
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
            id TEXT COLLATE "C" PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            event TEXT NOT NULL,
            tenant_id TEXT,
            data TEXT NOT NULL,
            subject_id TEXT COLLATE "C",
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            next_attempt_at DOUBLE PRECISION,
            last_attempt_at DOUBLE PRECISION,
            last_error TEXT,
            http_status INTEGER,
            delivered_at DOUBLE PRECISION,
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
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT COLLATE "C" NOT NULL,
            tenant TEXT COLLATE "C" NOT NULL,
            tenant_id TEXT COLLATE "C",
            subject_id TEXT COLLATE "C" NOT NULL,
            source TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            metadata TEXT NOT NULL,
            provenance TEXT NOT NULL,
            session_id TEXT COLLATE "C",
            created_at BIGINT NOT NULL,
            last_compiled_at BIGINT,
            UNIQUE (tenant, id)
        );
        CREATE INDEX episodes_by_subject ON episodes (tenant, subject_id, created_at, seq);
        CREATE INDEX episodes_uncompiled ON episodes (tenant, subject_id, created_at, seq)
            WHERE last_compiled_at IS NULL;
        CREATE TABLE memories (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT COLLATE "C" NOT NULL,
            tenant TEXT COLLATE "C" NOT NULL,
            tenant_id TEXT COLLATE "C",
            subject_id TEXT COLLATE "C" NOT NULL,
            kind TEXT NOT NULL,
            content TEXT NOT NULL,
            summary TEXT NOT NULL,
            confidence DOUBLE PRECISION NOT NULL,
            valid_from BIGINT NOT NULL,
            valid_to BIGINT,
            source_episode_ids TEXT NOT NULL,
            metadata TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
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
            window_start BIGINT NOT NULL,
            count BIGINT NOT NULL,
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
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT COLLATE "C" NOT NULL,
            tenant TEXT COLLATE "C" NOT NULL,
            tenant_id TEXT COLLATE "C",
            subject_id TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            status TEXT NOT NULL,
            resolution_summary TEXT,
            resolved_at BIGINT,
            metadata TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE UNIQUE INDEX resolutions_by_session ON resolutions (tenant, subject_id, session_id, coalesce(tenant_id, ''));
        CREATE INDEX resolutions_by_update ON resolutions (tenant, subject_id, updated_at);
        CREATE TABLE health_states (
            tenant TEXT COLLATE "C" NOT NULL,
            tenant_id TEXT COLLATE "C",
            subject_id TEXT COLLATE "C" NOT NULL,
            state TEXT NOT NULL,
            score BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
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
            tenant TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            vector BYTEA,
            checksum TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, session_id)
        );
        CREATE TABLE semvec_session_heads (
            tenant TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            heads TEXT NOT NULL,
            checksum TEXT NOT NULL,
            PRIMARY KEY (tenant, session_id)
        );
        CREATE TABLE semvec_memories (
            tenant TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            seq BIGINT NOT NULL,
            rev BIGINT NOT NULL,
            text TEXT NOT NULL,
            embedding BYTEA NOT NULL,
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
            tenant TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
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
        19,
        # Token buckets shared by the replicas (store/postgres/buckets.py; the semvec rate limit).
        """
        CREATE TABLE rate_buckets (
            bucket TEXT COLLATE "C" PRIMARY KEY,
            tokens DOUBLE PRECISION NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            granted BOOLEAN NOT NULL
        );
        """,
    ),
    (
        20,
        # semvec clusters and regions (docs/semantic-coordination.md): membership sets, drift events (a region
        # keeps its newest 1,000) and realignment records. `seq` is creation order; vectors live in sessions.
        """
        CREATE TABLE semvec_clusters (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            name TEXT NOT NULL,
            aggregation_mode TEXT NOT NULL,
            coupling_factor DOUBLE PRECISION NOT NULL,
            drift_exempt BOOLEAN NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE TABLE semvec_cluster_members (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            cluster_id TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            UNIQUE (tenant, cluster_id, session_id)
        );
        CREATE INDEX semvec_cluster_members_by_session ON semvec_cluster_members (tenant, session_id);
        CREATE TABLE semvec_regions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            name TEXT NOT NULL,
            meta_session_id TEXT COLLATE "C" NOT NULL,
            consensus_threshold DOUBLE PRECISION NOT NULL,
            vote_window_seconds DOUBLE PRECISION NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE INDEX semvec_regions_by_meta_session ON semvec_regions (tenant, meta_session_id);
        CREATE TABLE semvec_region_clusters (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            region_id TEXT COLLATE "C" NOT NULL,
            cluster_id TEXT COLLATE "C" NOT NULL,
            UNIQUE (tenant, region_id, cluster_id)
        );
        CREATE INDEX semvec_region_clusters_by_cluster ON semvec_region_clusters (tenant, cluster_id);
        CREATE TABLE semvec_drift_events (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            region_id TEXT COLLATE "C" NOT NULL,
            cluster_id TEXT COLLATE "C" NOT NULL,
            drift_score DOUBLE PRECISION NOT NULL,
            drift_phase TEXT NOT NULL,
            timestamp DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX semvec_drift_events_by_region ON semvec_drift_events (tenant, region_id, seq);
        CREATE TABLE semvec_realignments (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            region_id TEXT COLLATE "C" NOT NULL,
            timestamp DOUBLE PRECISION NOT NULL,
            voted_cluster_ids TEXT NOT NULL,
            eligible_cluster_count INTEGER NOT NULL,
            ratio DOUBLE PRECISION NOT NULL,
            consensus_threshold DOUBLE PRECISION NOT NULL,
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
            tenant TEXT COLLATE "C" PRIMARY KEY,
            id TEXT COLLATE "C" NOT NULL,
            meta_session_id TEXT COLLATE "C" NOT NULL,
            sample_interval_seconds DOUBLE PRECISION NOT NULL,
            last_sample_at DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE semvec_observer_regions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            region_id TEXT COLLATE "C" NOT NULL,
            UNIQUE (tenant, region_id)
        );
        CREATE TABLE semvec_anomalies (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            timestamp DOUBLE PRECISION NOT NULL,
            anomaly_type TEXT NOT NULL,
            affected_cluster_ids TEXT NOT NULL,
            description TEXT NOT NULL,
            severity DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX semvec_anomalies_by_tenant ON semvec_anomalies (tenant, seq);
        CREATE TABLE semvec_trust_scores (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant TEXT COLLATE "C" NOT NULL,
            session_id TEXT COLLATE "C" NOT NULL,
            trust DOUBLE PRECISION NOT NULL,
            UNIQUE (tenant, session_id)
        );
        CREATE TABLE semvec_active_users (
            tenant TEXT COLLATE "C" PRIMARY KEY,
            user_id TEXT COLLATE "C" NOT NULL
        );
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

# pg_advisory_xact_lock key: any constant shared by every replica ("stig" in ASCII).
LOCK_KEY = 0x73746967


async def migrate(conn: psycopg.AsyncConnection) -> int:
    """Apply pending migrations, each in its own transaction under the advisory lock; return the schema
    version. `conn` must not be in autocommit mode."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                           " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
    for version, script in MIGRATIONS:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            cur = await conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
            if await cur.fetchone() is not None:
                continue
            await conn.execute(script)  # several statements, no parameters: one simple query
            if version in AFTER:
                await AFTER[version](conn)
            await conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                               (version, time.time()))
    return max(v for v, _ in MIGRATIONS)
