"""Settings read from upstream's STATEWAVE_* variables (specs/statewave.md §3.10, Decision 17)."""

from __future__ import annotations

import pytest

from stigmer.config import Settings, SettingsError


def test_statewave_aliases_and_stigmer_wins():
    s = Settings.load(environ={"STATEWAVE_REQUIRE_TENANT": "yes", "STATEWAVE_COMPILE_JOB_RETENTION_HOURS": "2",
                               "STATEWAVE_WEBHOOK_TIMEOUT": "1.5", "STATEWAVE_RATE_LIMIT_RPM": "120",
                               "STATEWAVE_TENANT_HEADER": "X-Org", "STATEWAVE_CORS_ORIGINS": '["https://a"]'})
    assert (s.statewave_require_tenant, s.job_retention_hours, s.webhook_timeout_seconds, s.statewave_rate_limit_rpm,
            s.statewave_tenant_header, s.statewave_cors_origins) == (True, 2.0, 1.5, 120, "X-Org", '["https://a"]')
    s = Settings.load(environ={"STATEWAVE_RATE_LIMIT_RPM": "120", "STIGMER_STATEWAVE_RATE_LIMIT_RPM": "7"})
    assert s.statewave_rate_limit_rpm == 7
    # upstream's other variables are not ours: ignored, never an error
    assert Settings.load(environ={"STATEWAVE_API_KEY": "k"}).statewave_rate_limit_rpm == 0


def test_compiler_type_and_model_aliases():
    s = Settings.load(environ={"STATEWAVE_COMPILER_TYPE": " LLM", "STATEWAVE_LLM_COMPILER_MODEL": "gpt-4o"})
    assert (s.memory_compiler, s.memory_compiler_model) == ("llm", "gpt-4o")
    assert (Settings.load(environ={}).memory_compiler, Settings.load(environ={}).memory_compiler_model) == ("heuristic", "")
    assert Settings.load(environ={"STATEWAVE_COMPILER_TYPE": "llm", "STIGMER_MEMORY_COMPILER": "heuristic"}
                         ).memory_compiler == "heuristic"
    with pytest.raises(SettingsError, match="memory_compiler must be heuristic or llm"):
        Settings.load(environ={"STATEWAVE_COMPILER_TYPE": "litellm"})


def test_alias_values_are_checked_like_ours():
    with pytest.raises(SettingsError, match="statewave_require_tenant"):
        Settings.load(environ={"STATEWAVE_REQUIRE_TENANT": "maybe"})
    with pytest.raises(SettingsError, match="statewave_rate_limit_rpm"):
        Settings.load(environ={"STATEWAVE_RATE_LIMIT_RPM": "-1"})


def test_database_url_driver_suffix_and_server_aliases():
    s = Settings.load(environ={"STATEWAVE_DATABASE_URL": "postgresql+asyncpg://sw:pw@db:5432/statewave",
                               "STATEWAVE_HOST": "0.0.0.0", "STATEWAVE_PORT": "8100"})
    assert (s.database_url, s.host, s.port) == ("postgresql://sw:pw@db:5432/statewave", "0.0.0.0", 8100)
    assert Settings.load({"database_url": "postgres+psycopg://h/d"}, environ={}).database_url == "postgres://h/d"
    assert Settings.load(environ={"STIGMER_PORT": "7474", "STATEWAVE_PORT": "8100"}).port == 7474
