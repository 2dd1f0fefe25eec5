"""Settings: one table of name, type, default, bounds and help, read from STIGMER_* variables.

The `Settings` dataclass is derived from the table, so the two cannot drift. The same table feeds
`stigmer serve --help-settings`, `GET /v1/settings` (admin only, secrets redacted) and docs/settings.md
(a test keeps the doc in step with the table).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    secret: bool = False  # never served, never logged
    aliases: tuple[str, ...] = ()  # other variables read when STIGMER_<NAME> is not set (STATEWAVE_*, §3.10)
    parse: Any = None  # text -> value, after the type conversion (a spelling accepted for another)

    @property
    def env(self) -> str:
        return "STIGMER_" + self.name.upper()


def _database_url(url: str) -> str:
    """Statewave's spelling `postgresql+asyncpg://…` is `postgresql://…`: a `+driver` suffix is ignored."""
    scheme, sep, rest = url.strip().partition("://")
    base = scheme.split("+", 1)[0]
    return f"{base}://{rest}" if sep and base in ("postgresql", "postgres") else url.strip()


def _compiler(name: str) -> str:
    if name.strip().lower() not in ("heuristic", "llm"):
        raise SettingsError(f"setting memory_compiler must be heuristic or llm, got {name!r}")
    return name.strip().lower()


def _log_format(name: str) -> str:
    if name.strip().lower() not in ("text", "json"):
        raise SettingsError(f"setting log_format must be text or json, got {name!r}")
    return name.strip().lower()


S = Setting
SETTINGS: tuple[Setting, ...] = (
    S("host", str, "127.0.0.1", "Address to listen on.", aliases=("STATEWAVE_HOST",)),
    S("port", int, 7474, "TCP port to listen on.", 0, 65535, aliases=("STATEWAVE_PORT",)),
    S("data_dir", str, "./data", "Directory holding the embedded SQLite database."),
    S("database_url", str, "", "A `postgresql://` URL (`postgresql+asyncpg://` is read as the same): use that PostgreSQL (shared by every replica) instead of the embedded SQLite store.", secret=True, aliases=("STATEWAVE_DATABASE_URL",), parse=_database_url),
    S("pg_pool_size", int, 8, "PostgreSQL: connections in each replica's read pool.", 1, 1000),
    S("pg_writers", int, 2, "PostgreSQL: writer connections per replica (each commits groups of mutations).", 1, 64),
    S("feed_tick_seconds", float, 1.0, "PostgreSQL: how often each replica polls for commits whose doorbell it missed.", 0.01, 3600),
    S("max_value_bytes", int, 1_048_576, "Largest value accepted, in bytes of compact JSON.", 1, 64 << 20),
    S("max_key_bytes", int, 1024, "Longest key accepted, in UTF-8 bytes.", 1, 65_536),
    S("max_batch", int, 100, "Most keys in one batch read or transaction.", 1, 10_000),
    S("change_retention_seconds", float, 86_400.0, "How long change history is kept for watch resume and key history.", 1),
    S("sweep_interval_seconds", float, 0.25, "How often expired keys are removed and their `expire` changes emitted.", 0.01, 3600),
    S("lease_default_ttl_seconds", float, 60.0, "Leases: TTL of an acquire or renew that names none.", 0.001, 86_400),
    S("lease_max_ttl_seconds", float, 3600.0, "Leases: the longest TTL an acquire or renew may ask for.", 0.001, 86_400),
    S("lease_max_wait_seconds", float, 30.0, "Leases: the longest `wait` of a blocking acquire.", 0, 3600),
    S("idempotency_retention_seconds", float, 86_400.0, "How long the answer to a request with an `Idempotency-Key` is kept for replay (docs/idempotency.md); an older key counts as new.", 1),
    S("job_retention_hours", float, 168.0, "Jobs (docs/jobs.md): completed and failed jobs older than this are deleted; 0 = kept for ever.", 0, aliases=("STATEWAVE_COMPILE_JOB_RETENTION_HOURS",)),
    S("job_lease_seconds", float, 30.0, "Jobs: how long a worker's claim on a running job lasts unless renewed (it is renewed every third of it); a job whose worker died runs again after this.", 1, 86_400),
    S("job_max_attempts", int, 3, "Jobs: how many times a job may be claimed before a run lost with its worker fails it.", 1, 100),
    S("compact_interval_seconds", float, 60.0, "How often change history older than the retention is removed.", 0.01),
    S("sse_keepalive_seconds", float, 15.0, "Idle time after which an SSE stream sends a keep-alive comment.", 0.01, 3600),
    S("watch_buffer", int, 256, "Live change batches buffered per watcher before it is switched to catching up from history.", 1, 1 << 20),
    S("reader_threads", int, 2, "Threads in the pool used for scans (list, history, watch catch-up).", 1, 64),
    S("log_level", str, "info", "Server log level: debug, info, warning or error."),
    S("access_log", bool, True, "Write one line per request to stderr at log level info (credentials in the query redacted)."),
    S("log_format", str, "text", "Format of every server log line, the access log's included: `text` (uvicorn's), or `json` (one object a line: docs/operations.md \"Logs\").", parse=_log_format),
    S("metrics_user", str, "", "Basic auth user of `GET /metrics` (docs/operations.md \"Metrics\"); empty = /metrics answers 503.", aliases=("STIGMER_SEMVEC_METRICS_USER",)),
    S("metrics_password", str, "", "Basic auth password of `GET /metrics`.", secret=True, aliases=("STIGMER_SEMVEC_METRICS_PASSWORD",)),
    S("head_timeout_seconds", float, 10.0, "Longest time a client may take to send a request head; then the connection is closed.", 0.1, 3600),
    S("keepalive_timeout_seconds", float, 5.0, "Idle time after which a keep-alive connection is closed.", 0.1, 3600),
    S("server", str, "uvicorn", "HTTP server: `uvicorn`, or `granian` (opt-in: `pip install 'stigmer[granian]'`; what it does not give is in docs/benchmarks.md)."),
    # access (docs/security.md)
    S("admin_key", str, "", "An admin API key (tenant `default`) created at start-up if absent; use it to bootstrap. Ends open mode.", secret=True),
    S("allow_open_remote", bool, False, "Serve in open mode (no API key exists) on a non-loopback address. Anyone who can reach it can read and write."),
    S("allowed_hosts", str, "", "Host names accepted in open mode besides the loopback names, comma-separated; `*` accepts any."),
    S("trusted_proxies", str, "", "Comma-separated proxy addresses/CIDRs whose `X-Forwarded-For` / `Forwarded` is honoured, on every surface."),
    S("cors_origins", str, "", "Origins allowed by CORS on the native API and the CntrlNode surface, comma-separated; empty = none."),
    S("body_timeout_seconds", float, 10.0, "Longest silence while a client sends a request body; the whole body must arrive within 6 times this.", 0.1, 3600),
    S("max_streams_per_client", int, 1000, "Open streaming requests (SSE, long-poll) per credential, per client IP without one.", 1, 1 << 20),
    S("native_rate_limit", int, 0, "Native API: requests per minute per credential (per IP in open mode); 0 = off.", 0),
    # statevec surface (/v)
    S("statevec_default_ttl", int, 86_400, "statevec: TTL in seconds of a write without `ttl`; 0 = persistent.", 0, 315_360_000),
    S("statevec_max_ttl", int, 2_592_000, "statevec: largest `ttl` accepted, in seconds.", 1, 315_360_000),
    S("statevec_max_value_bytes", int, 65_536, "statevec: largest value, in bytes of compact JSON.", 1, 64 << 20),
    S("statevec_max_body_bytes", int, 278_528, "statevec: largest request body, in bytes.", 1, 128 << 20),
    S("statevec_max_batch", int, 20, "statevec: most hashes in one POST /v/batch.", 1, 1000),
    S("statevec_rate_limit_anon", int, 120, "statevec: requests per minute per client IP without a valid key; 0 = off.", 0),
    S("statevec_rate_limit_key", int, 600, "statevec: requests per minute per valid API key in `x-statevec-key`; 0 = off.", 0),
    S("statevec_upgrade_url", str, "", "statevec: URL sent as `upgrade` in 429 bodies; empty = none."),
    S("statevec_cors_origins", str, "*", "statevec: allowed CORS origins, comma-separated, or *."),
    # CntrlNode surface (/v1/state)
    S("agentstate_rate_limit", str, "1000", "AgentState: requests per minute per credential (a fixed window per UTC minute); blank or invalid means 1000, as the spec says."),
    S("agentstate_cors_origins", str, "", "AgentState: allowed CORS origins, comma-separated, or *; empty = none."),
    S("cntrlnode_rate_limit", int, 0, "CntrlNode: requests per minute per API key (per IP in open mode); 0 = off.", 0),
    S("cntrlnode_max_streams", int, 1000, "CntrlNode: open SSE streams per API key (per IP in open mode).", 0, 1 << 20),
    S("cntrlnode_max_value_bytes", int, 1_048_576, "CntrlNode: largest value, in bytes of compact JSON.", 1, 64 << 20),
    # semvec surface (docs/semantic-sessions.md)
    S("semvec_rate", float, 50.0, "semvec: token-bucket refill per API key (per default tenant in open mode), tokens per second; 0 = no limit.", 0, 1e6),
    S("semvec_burst", int, 100, "semvec: token-bucket capacity per API key.", 1, 1 << 20),
    S("semvec_beta", float, 0.85, "semvec: EMA weight β of the previous session vector in a turn (§6.2).", 0, 1),
    S("semvec_drift_threshold", float, 0.2, "semvec: θ_d; cos(query, session) at or below it is drift, a turn at or below it a topic switch.", -1, 1),
    S("semvec_shift_threshold", float, 0.4, "semvec: θ_s; cos(query, session) below it is `shifting`.", -1, 1),
    S("semvec_anchor_threshold", float, 0.5, "semvec: θ_a; an anchor score below it starts a realignment (§6.3).", 0, 1),
    S("semvec_dedup_threshold", float, 0.85, "semvec: default dedup threshold of the informational `dedup_signal`.", -1, 1),
    S("semvec_anchor_boost", float, 0.6, "semvec: retrieval weight of anchors and policy vectors (§6.5).", 0, 10),
    S("semvec_trigger_boost", float, 0.3, "semvec: retrieval bonus of a memory a trigger fires on (§6.5).", 0, 10),
    S("semvec_top_k", int, 5, "semvec: memories retrieved into the /v1/run context.", 1, 50),
    S("semvec_context_chars", int, 4000, "semvec: characters the memory texts of a /v1/run context share.", 50, 1 << 20),
    S("semvec_tier_short", int, 64, "semvec: capacity of the short_term tier.", 1, 1 << 20),
    S("semvec_tier_medium", int, 512, "semvec: capacity of the medium_term tier.", 1, 1 << 20),
    S("semvec_tier_long", int, 4096, "semvec: capacity of the long_term tier (overflow goes to the unbounded archive).", 1, 1 << 22),
    S("semvec_entity_capacity", int, 200, "semvec: literal entities kept per session (the least important go first).", 1, 100_000),
    # LLM features (docs/llm.md)
    S("llm_base_url", str, "", "Base URL of an OpenAI-compatible chat-completions endpoint (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`); empty = no LLM, the heuristics are used."),
    S("llm_api_key", str, "", "Key sent as `Authorization: Bearer` to the LLM endpoint; empty = no header.", secret=True),
    S("llm_model", str, "gpt-4o-mini", "Model named in every chat-completions request."),
    S("llm_timeout_seconds", float, 10.0, "Longest wait for one LLM answer (its one retry included); then the heuristic answers.", 0.1, 600),
    # embeddings (docs/embeddings.md)
    S("embedding_provider", str, "hash-v1", "Embedder of the server: `hash-v1` (deterministic, no dependencies), `none`, `local:<model>` (weights from an installed package: `local:all-MiniLM-L6-v2` needs the `embeddings-local` extra) or `openai:<model>` (an OpenAI-compatible `/embeddings` endpoint at `embedding_base_url`)."),
    S("embedding_dimension", int, 0, "Vector size D; 0 = the provider's own (384 for `hash-v1` and all-MiniLM-L6-v2, the first answer of an `openai:` endpoint). Fixed for the life of the data.", 0, 65_536),
    S("embedding_base_url", str, "https://api.openai.com/v1", "Base URL of the OpenAI-compatible embeddings endpoint of an `openai:<model>` provider (`http://127.0.0.1:11434/v1`)."),
    S("embedding_api_key", str, "", "Key sent as `Authorization: Bearer` to the embeddings endpoint; empty = no header.", secret=True),
    S("memory_embedding_provider", str, "none", "Embedder of the memory engine (docs/memory.md \"Search\"): `none` (text search only), `stub` (the same as none), `hash-v1` (hybrid ranking and the query-driven context only; never Statewave ranking), `local:<model>` or `openai:<model>` (real providers: Statewave `semantic=true` and §6.8 relevance too). `embedding_base_url`, `embedding_api_key`, `embedding_dimension` and `embedding_timeout_seconds` apply."),
    S("memory_compiler", str, "heuristic", "Memory compiler (docs/memory.md \"The LLM compiler\"): `heuristic` (Statewave §6.2) or `llm` (§6.4: the model of `memory_compiler_model` at `llm_base_url`, each failed batch compiled by the heuristic; with no `llm_base_url`, the heuristic).", aliases=("STATEWAVE_COMPILER_TYPE",), parse=_compiler),
    S("memory_compiler_model", str, "", "Model named by the LLM memory compiler's requests; empty = `llm_model`.", aliases=("STATEWAVE_LLM_COMPILER_MODEL",)),
    S("memory_max_context_tokens", int, 4000, "Context budget when a request gives no `max_tokens` (Statewave DEFAULT_MAX_CONTEXT_TOKENS).", 1, 128_000, aliases=("STATEWAVE_DEFAULT_MAX_CONTEXT_TOKENS",)),
    S("embedding_timeout_seconds", float, 10.0, "Longest wait for one embeddings request (its one retry included); then the call fails as unavailable.", 0.1, 600),
    # webhooks (docs/webhooks.md)
    S("webhook_url", str, "", "URL every webhook event is POSTed to (`http://` or `https://`); empty = webhooks off: no event is written or sent. Treated as a secret (a receiver's URL often carries its token).", secret=True, aliases=("STATEWAVE_WEBHOOK_URL",)),
    S("webhook_secret", str, "", "Key of the `X-Signature: sha256=<HMAC-SHA256 of the body>` header of each delivery; empty = unsigned.", secret=True, aliases=("STATEWAVE_WEBHOOK_SECRET",)),
    S("webhook_timeout_seconds", float, 5.0, "Longest wait for one delivery attempt (connect, send and answer); then it counts as failed.", 0.1, 600, aliases=("STATEWAVE_WEBHOOK_TIMEOUT",)),
    S("webhook_max_attempts", int, 5, "Delivery attempts of an event before it is left as `dead_letter`.", 1, 100),
    S("webhook_retention_hours", float, 168.0, "Hours a delivered or dead-lettered webhook event is kept (counted from its creation); 0 = for ever. Pending events are never deleted.", 0, 87600),
    # Statewave surface (docs/compat.md): STATEWAVE_* variables are read as aliases; STIGMER_* wins
    S("statewave_require_tenant", bool, False, "Statewave: every request except health needs the tenant header (400 `missing_tenant` without it).", aliases=("STATEWAVE_REQUIRE_TENANT",)),
    S("statewave_tenant_header", str, "X-Tenant-ID", "Statewave: the header naming the Statewave tenant of a request (inside the key's Stigmer tenant).", aliases=("STATEWAVE_TENANT_HEADER",)),
    S("statewave_cors_origins", str, "*", "Statewave: allowed CORS origins, a JSON array or comma-separated, or *.", aliases=("STATEWAVE_CORS_ORIGINS",)),
    S("statewave_rate_limit_rpm", int, 0, "Statewave: requests per minute per client IP; 0 = off.", 0, aliases=("STATEWAVE_RATE_LIMIT_RPM",)),
    S("statewave_rate_limit_strategy", str, "distributed", "Statewave: `distributed` (a fixed window per UTC minute counted in the store, shared by every replica; fails open) or `memory` (a sliding 60 s log in this process).", aliases=("STATEWAVE_RATE_LIMIT_STRATEGY",)),
)
del S

_BY_NAME = {s.name: s for s in SETTINGS}
# STIGMER_* variables read by the client side (SDK, CLI), not by the server.
CLIENT_VARIABLES = frozenset({"STIGMER_URL", "STIGMER_API_KEY"})
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class SettingsError(ValueError):
    """A setting has an unknown name, a value of the wrong type or a value out of range."""


def _convert(setting: Setting, raw: Any) -> Any:
    want = setting.type
    what = f"setting {setting.name} ({setting.env})"
    if want is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise SettingsError(f"{what} must be true or false (or 1/0), got {raw!r}")
    if isinstance(raw, want) and not isinstance(raw, bool):
        value = raw
    else:
        try:
            value = want(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{what} must be {'an integer' if want is int else 'a ' + want.__name__}, "
                                f"got {raw!r}") from None
    if want is float and not math.isfinite(value):
        raise SettingsError(f"{what} must be a finite number, got {raw!r}")
    if setting.parse is not None:
        value = setting.parse(value)
    if setting.min is not None and value < setting.min or setting.max is not None and value > setting.max:
        bounds = f">= {setting.min:g}" if setting.max is None else f"between {setting.min:g} and {setting.max:g}"
        raise SettingsError(f"{what} must be {bounds}, got {raw!r}")
    return value


Settings = dataclasses.make_dataclass(
    "Settings", [(s.name, s.type, dataclasses.field(default=s.default)) for s in SETTINGS], frozen=True)
Settings.__module__ = __name__
Settings.__doc__ = "The settings in force: one field per row of SETTINGS."


def _load(cls: type, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """Defaults, then STIGMER_* variables, then explicit overrides (None values are skipped)."""
    environ = os.environ if environ is None else environ
    known = {e for s in SETTINGS for e in (s.env, *s.aliases)} | CLIENT_VARIABLES
    unknown = sorted(k for k in environ if k.startswith("STIGMER_") and k not in known)
    if unknown:
        raise SettingsError(f"unknown setting variable {unknown[0]} (`stigmer serve --help-settings` lists them)")
    values: dict[str, Any] = {}
    for s in SETTINGS:
        env = next((e for e in (s.env, *s.aliases) if e in environ), None)
        if env is not None:
            values[s.name] = _convert(s, environ[env])
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in _BY_NAME:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _convert(_BY_NAME[name], raw)
    return cls(**values)


def _public(self: Any) -> dict[str, Any]:
    """Every setting; secrets are replaced by whether they are set."""
    out = dataclasses.asdict(self)
    for s in SETTINGS:
        if s.secret:
            out[s.name] = "(set)" if out[s.name] else ""
    return out


def _secrets(self: Any) -> list[str]:
    """The configured secret values (for tests and log scrubbing)."""
    return [getattr(self, s.name) for s in SETTINGS if s.secret and getattr(self, s.name)]


Settings.load = classmethod(_load)
Settings.public = _public
Settings.secrets = _secrets


def settings_markdown() -> str:
    """docs/settings.md, generated from the table (`make docs` writes it; a test checks it)."""
    out = [
        "# Settings", "",
        "Every setting has a default and can be set with its `STIGMER_*` environment variable; `stigmer serve` also",
        "takes `--host`, `--port` and `--data-dir`. `stigmer serve --help-settings` prints this list and",
        "`GET /v1/settings` (admin scope) returns the values in force with secrets redacted. Booleans take",
        "`true`/`false` or `1`/`0`. An unknown `STIGMER_*` variable, a mistyped value or a value out of range stops",
        "start-up with a message naming it. This page is generated from `src/stigmer/config.py` by `make docs`.", "",
    ]
    for s in SETTINGS:
        out += [f"## `{s.name}`", "", f"- variable: `{s.env}`", f"- type: {s.type.__name__}",
                f"- default: `{s.default!r}`"]
        if s.aliases:
            out.append(f"- also read from: {', '.join(f'`{a}`' for a in s.aliases)} (`{s.env}` wins)")
        if s.min is not None:
            out.append(f"- range: {s.min:g} – {s.max:g}" if s.max is not None else f"- minimum: {s.min:g}")
        if s.secret:
            out.append("- secret: never served by `/v1/settings`, never logged")
        out += ["", s.help, ""]
    return "\n".join(out)
