"""Settings: one table of name, type, default and help, read from STIGMER_* variables.

The same table feeds `stigmer serve --help-settings`, `GET /v1/settings` and docs/settings.md (a test
keeps the doc in step with the table).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "STIGMER_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "Address to listen on."),
    Setting("port", int, 7474, "TCP port to listen on."),
    Setting("data_dir", str, "./data", "Directory holding the embedded SQLite database."),
    Setting("max_value_bytes", int, 1_048_576, "Largest value accepted, in bytes of compact JSON."),
    Setting("max_key_bytes", int, 1024, "Longest key accepted, in UTF-8 bytes."),
    Setting("max_batch", int, 100, "Most keys in one batch read or transaction."),
    Setting("change_retention_seconds", float, 86_400.0, "How long change history is kept for watch resume and key history."),
    Setting("sweep_interval_seconds", float, 0.25, "How often expired keys are removed and their `expire` changes emitted."),
    Setting("compact_interval_seconds", float, 60.0, "How often change history older than the retention is removed."),
    Setting("sse_keepalive_seconds", float, 15.0, "Idle time after which an SSE stream sends a keep-alive comment."),
    Setting("watch_buffer", int, 256, "Live change batches buffered per watcher before it is switched to catching up from history."),
    Setting("reader_threads", int, 2, "Threads in the pool used for scans (list, history, watch catch-up)."),
    Setting("log_level", str, "info", "Server log level: debug, info, warning or error."),
    # statevec surface (/v)
    Setting("statevec_default_ttl", int, 86_400, "statevec: TTL in seconds of a write without `ttl`; 0 = persistent."),
    Setting("statevec_max_ttl", int, 2_592_000, "statevec: largest `ttl` accepted, in seconds."),
    Setting("statevec_max_value_bytes", int, 65_536, "statevec: largest value, in bytes of compact JSON."),
    Setting("statevec_max_body_bytes", int, 278_528, "statevec: largest request body, in bytes."),
    Setting("statevec_max_batch", int, 20, "statevec: most hashes in one POST /v/batch."),
    Setting("statevec_rate_limit_anon", int, 120, "statevec: requests per minute per client IP without a valid key; 0 = off."),
    Setting("statevec_rate_limit_key", int, 600, "statevec: requests per minute per valid x-statevec-key; 0 = off."),
    Setting("statevec_api_keys", str, "", "statevec: comma-separated keys accepted in x-statevec-key (they only raise the rate limit)."),
    Setting("statevec_trusted_proxies", str, "", "statevec: comma-separated proxy addresses/CIDRs whose X-Forwarded-For is honoured."),
    Setting("statevec_upgrade_url", str, "", "statevec: URL sent as `upgrade` in 429 bodies; empty = none."),
    Setting("statevec_cors_origins", str, "*", "statevec: allowed CORS origins, comma-separated, or *."),
    # CntrlNode surface (/v1/state)
    Setting("cntrlnode_api_keys", str, "", "CntrlNode: comma-separated API keys, each `key` or `tenant:key`; empty = open."),
    Setting("cntrlnode_rate_limit", int, 0, "CntrlNode: requests per minute per API key (per IP in open mode); 0 = off."),
    Setting("cntrlnode_max_streams", int, 1000, "CntrlNode: open SSE streams per API key (per IP in open mode)."),
    Setting("cntrlnode_max_value_bytes", int, 1_048_576, "CntrlNode: largest value, in bytes of compact JSON."),
    Setting("cors_origins", str, "", "Comma-separated origins allowed by CORS on the CntrlNode surface; empty = no CORS."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A setting has an unknown name or a value of the wrong type."""


def _convert(setting: Setting, raw: Any) -> Any:
    if isinstance(raw, setting.type) and not isinstance(raw, bool):
        return raw
    try:
        return setting.type(raw)
    except (TypeError, ValueError):
        raise SettingsError(
            f"setting {setting.name} ({setting.env}) must be {setting.type.__name__}, got {raw!r}"
        ) from None


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7474
    data_dir: str = "./data"
    max_value_bytes: int = 1_048_576
    max_key_bytes: int = 1024
    max_batch: int = 100
    change_retention_seconds: float = 86_400.0
    sweep_interval_seconds: float = 0.25
    compact_interval_seconds: float = 60.0
    sse_keepalive_seconds: float = 15.0
    watch_buffer: int = 256
    reader_threads: int = 2
    log_level: str = "info"
    statevec_default_ttl: int = 86_400
    statevec_max_ttl: int = 2_592_000
    statevec_max_value_bytes: int = 65_536
    statevec_max_body_bytes: int = 278_528
    statevec_max_batch: int = 20
    statevec_rate_limit_anon: int = 120
    statevec_rate_limit_key: int = 600
    statevec_api_keys: str = ""
    statevec_trusted_proxies: str = ""
    statevec_upgrade_url: str = ""
    statevec_cors_origins: str = "*"
    cntrlnode_api_keys: str = ""
    cntrlnode_rate_limit: int = 0
    cntrlnode_max_streams: int = 1000
    cntrlnode_max_value_bytes: int = 1_048_576
    cors_origins: str = ""

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        """Defaults, then STIGMER_* variables, then explicit overrides (None values are skipped)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            if s.env in environ:
                values[s.name] = _convert(s, environ[s.env])
        for name, raw in (overrides or {}).items():
            if raw is None:
                continue
            if name not in _BY_NAME:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = _convert(_BY_NAME[name], raw)
        return cls(**values)

    def public(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def settings_markdown() -> str:
    """docs/settings.md, generated from the table (`make docs` writes it; a test checks it)."""
    out = [
        "# Settings", "",
        "Every setting has a default and can be set with its `STIGMER_*` environment variable; `stigmer serve` also",
        "takes `--host`, `--port` and `--data-dir`. `stigmer serve --help-settings` prints this list and",
        "`GET /v1/settings` returns the values in force. An unknown or mistyped value stops start-up with a message",
        "naming it. This page is generated from `src/stigmer/config.py` by `make docs`.", "",
    ]
    for s in SETTINGS:
        out += [f"## `{s.name}`", "", f"- variable: `{s.env}`", f"- type: {s.type.__name__}",
                f"- default: `{s.default!r}`", "", s.help, ""]
    return "\n".join(out)


assert [s.name for s in SETTINGS] == [f.name for f in dataclasses.fields(Settings)], "SETTINGS and Settings drifted"
assert all(s.default == getattr(Settings, s.name) for s in SETTINGS), "SETTINGS defaults drifted"
