"""What the front doors are given: the settings and the engine's capabilities, built once at start-up."""

from __future__ import annotations

import dataclasses

from .clock import Clock
from .config import Settings
from .engine.analytics import Analytics
from .engine.changes import ChangeHub
from .engine.claims import Claims
from .engine.conversation_search import ConversationSearch
from .engine.conversations import Conversations
from .engine.idempotency import Idempotency
from .engine.jobs import Jobs
from .engine.keys import Keys
from .engine.kv import KV
from .engine.leases import LeaseLimits, Leases
from .engine.coordination import Coordination
from .engine.sessions import Params, Sessions
from .engine.memory import Memory
from .engine.memory.admin import Admin as MemoryAdmin
from .engine.memory.support import Support
from .engine.memory.context import store_resolutions
from .engine.memory.llm_compiler import compiler_of
from .engine.states import States
from .engine.tokens import Tokens
from .engine.traces import Traces
from .engine.webhooks import Webhooks
from .store.base import Store
from .support import embeddings
from .support.embeddings import from_settings
from .support.llm import LLM
from .support.metrics import Metrics
from .support.ratelimit import RateLimiter, SharedRateLimiter, StoreWindows


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
    states: States = None  # type: ignore[assignment]
    tokens: Tokens = None  # type: ignore[assignment]  # the key engine's (it authenticates them) when not given
    claims: Claims = None  # type: ignore[assignment]  # built from the others when not given; set `claims.events`
    idempotency: Idempotency = None  # type: ignore[assignment]  # likewise
    conversations: Conversations = None  # type: ignore[assignment]  # likewise
    conversation_search: ConversationSearch = None  # type: ignore[assignment]  # likewise
    traces: Traces = None  # type: ignore[assignment]  # likewise
    analytics: Analytics = None  # type: ignore[assignment]  # likewise
    llm: LLM = None  # type: ignore[assignment]  # from the settings when not given; closed at shutdown
    jobs: Jobs = None  # type: ignore[assignment]  # likewise; its worker runs once a kind is registered
    webhooks: Webhooks = None  # type: ignore[assignment]  # likewise; its worker runs only when a URL is set
    sessions: Sessions = None  # type: ignore[assignment]  # semantic sessions over the server's embedder
    memory: Memory = None  # type: ignore[assignment]  # from the settings, over the webhooks (its events are theirs)
    support: Support = None  # type: ignore[assignment]  # Statewave resolutions, health, SLA, handoff (likewise)
    memory_admin: MemoryAdmin = None  # type: ignore[assignment]  # Statewave admin: jobs, audit, export, import
    coordination: Coordination = None  # type: ignore[assignment]  # semvec clusters, regions, observer, network
    shared_limiter: SharedRateLimiter | None = None  # token buckets the replicas share (a store with `buckets`)
    rate_windows: StoreWindows = None  # type: ignore[assignment]  # per-minute windows counted in the store
    metrics: Metrics = dataclasses.field(default_factory=Metrics)  # the registry every surface records into

    def __post_init__(self) -> None:
        if self.tokens is None:
            if self.keys.tokens is None:
                self.keys.tokens = Tokens(self.store.tokens, self.keys.clock)
            self.tokens = self.keys.tokens
        if self.leases is None:
            s = self.settings
            self.leases = Leases(self.store, self.hub, LeaseLimits(
                s.lease_default_ttl_seconds, s.lease_max_ttl_seconds, s.lease_max_wait_seconds), self.kv.limits)
        if self.idempotency is None:
            self.idempotency = Idempotency(self.store, self.settings.idempotency_retention_seconds)
        if self.states is None:
            self.states = States(self.store, self.hub, self.idempotency)
        if self.claims is None:
            self.claims = Claims(self.store, self.kv, self.states)
        if self.conversations is None:
            self.conversations = Conversations(self.store)
        if self.conversation_search is None:
            self.conversation_search = ConversationSearch(self.store)
        if self.traces is None:
            self.traces = Traces(self.store, self.conversations)
        if self.analytics is None:
            self.analytics = Analytics(self.store)
        if self.llm is None:
            self.llm = LLM.from_settings(self.settings)
        if self.jobs is None:
            s = self.settings
            self.jobs = Jobs(self.store, self.clock, lease_seconds=s.job_lease_seconds,
                             max_attempts=s.job_max_attempts, retention_hours=s.job_retention_hours)
        if self.webhooks is None:
            self.webhooks = Webhooks.from_settings(self.store, self.settings, self.clock)
        if self.sessions is None:
            self.sessions = sessions_from_settings(self.store, self.settings, self.clock)
        if self.memory is None:
            self.memory = Memory(self.store, self.webhooks, embedder=memory_embedder(self.settings),
                                 default_max_tokens=self.settings.memory_max_context_tokens,
                                 resolutions_of=store_resolutions(self.store),
                                 compiler=compiler_of(self.settings, self.llm))
        if self.support is None:  # hangs its cascade on the memory engine: a subject delete erases support rows
            self.support = Support(self.store, self.webhooks, self.memory)
        if self.memory_admin is None:
            self.memory_admin = MemoryAdmin(self.store, self.webhooks, self.memory.embed)
        if self.coordination is None:  # hangs its drift and delete hooks on the sessions engine
            self.coordination = Coordination(self.store, self.sessions)
        buckets = getattr(self.store, "buckets", None)  # PostgreSQL has them; SQLite's one process needs none
        if self.shared_limiter is None and buckets is not None:
            self.shared_limiter = SharedRateLimiter(buckets)
        if self.rate_windows is None:
            self.rate_windows = StoreWindows(self.store, self.clock.now)


def memory_embedder(settings: Settings):
    """The memory engine's embedder (`memory_embedding_provider`; `none` and `stub` give None), built like the
    server's (support/embeddings.py) with the same endpoint settings."""
    provider = settings.memory_embedding_provider.strip()
    if provider in ("none", "stub"):
        return None
    return from_settings(dataclasses.replace(settings, embedding_provider=provider))


def session_params(s: Settings) -> Params:
    return Params(beta=s.semvec_beta, drift_threshold=s.semvec_drift_threshold, shift_threshold=s.semvec_shift_threshold,
                  anchor_threshold=s.semvec_anchor_threshold, dedup_threshold=s.semvec_dedup_threshold,
                  anchor_boost=s.semvec_anchor_boost, trigger_boost=s.semvec_trigger_boost, top_k=s.semvec_top_k,
                  context_chars=s.semvec_context_chars,
                  tiers=(s.semvec_tier_short, s.semvec_tier_medium, s.semvec_tier_long),
                  entity_capacity=s.semvec_entity_capacity)


def sessions_from_settings(store: Store, settings: Settings, clock: Clock) -> Sessions:
    """The sessions engine over the server's embedder; `none` means hash-v1 here (semvec §6.1)."""
    embedder = embeddings.from_settings(settings) or embeddings.HashEmbedder(settings.embedding_dimension or 384)
    return Sessions(store, embedder, clock, session_params(settings))
