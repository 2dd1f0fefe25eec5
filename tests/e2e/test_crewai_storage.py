"""`StigmerMemoryStorage` (src/stigmer/integrations/crewai/storage.py), CrewAI's unified-memory StorageBackend,
with the real crewai package and no LLM: the backend's methods called directly, and CrewAI's own `Memory` over
it (explicit scope/categories/importance, shallow recall, a toy embedder), against the real server; a read-only
key refused on save; tenant isolation."""

from __future__ import annotations

import pytest

from crewai_support import crewai_python, drive, keyed_server

# The first test of a run on a fresh cache builds crewai's environment (minutes): beyond the default timeout.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def python() -> str:
    return crewai_python()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = keyed_server(tmp_path_factory.mktemp("crewai-storage") / "data")
    yield s
    s.kill()


def test_the_storage_protocol_over_keys(python, srv, ns):
    out = drive(python, "storage", url=srv.url, api_key=srv.keys["a"], ns=ns)
    assert out["is_backend"] is True  # crewai's runtime_checkable StorageBackend
    got = out["get"]
    assert (got["content"], got["scope"], got["categories"], got["metadata"], got["embedding"]) == (
        "postgres chosen", "/project/db", ["decision"], {"by": "ana"}, [1.0, 0.0])
    assert out["get_absent"] is None
    # 1 / (1 + L2 distance), best first; [0.6, 0.8] is at distance sqrt(0.8) from [1, 0].
    assert [c for c, _ in out["search_all"]][:3] in (
        ["postgres chosen", "sibling scope", "odd / scope: name"], ["postgres chosen", "odd / scope: name", "sibling scope"],
        ["sibling scope", "postgres chosen", "odd / scope: name"], ["sibling scope", "odd / scope: name", "postgres chosen"],
        ["odd / scope: name", "postgres chosen", "sibling scope"], ["odd / scope: name", "sibling scope", "postgres chosen"])
    assert out["search_all"][0][1] == 1.0 and out["search_all"][3] == ["rate limit 1000/min", round(1 / (1 + 0.8 ** 0.5), 6)]
    assert [c for c, _ in out["search_scope"]] == ["postgres chosen", "rate limit 1000/min", "port 8080 for staging"]
    assert [c for c, _ in out["search_category"]] == ["rate limit 1000/min", "port 8080 for staging"]
    assert [c for c, _ in out["search_metadata"]] == ["postgres chosen"]
    assert sorted(c for c, _ in out["search_min_score"]) == ["odd / scope: name", "postgres chosen", "sibling scope"]
    assert [c for c, _ in out["search_odd_scope"]] == ["odd / scope: name"]
    assert out["list"] == ["rate limit 1000/min", "port 8080 for staging", "postgres chosen"]  # newest first
    assert out["list_page"] == ["sibling scope", "rate limit 1000/min"]
    info = out["info"]
    assert (info["path"], info["record_count"], info["categories"], info["child_scopes"]) == (
        "/project", 3, ["api", "config", "decision"], ["/project/db", "/project/ops"])
    assert info["oldest_record"].startswith("2026-01-01") and info["newest_record"].startswith("2026-01-03")
    assert out["scopes_root"] == ["/a b", "/project", "/projectx"]
    assert out["scopes_project"] == ["/project/db", "/project/ops"]
    assert out["categories"] == {"decision": 1, "config": 2, "api": 1}
    assert out["count"] == [5, 3, 1, 0]
    assert out["after_update"] == ["port 9090 for staging", "/archive", 0, 5]  # moved, not copied
    assert out["delete_ids"] == 1
    assert out["delete_category"] == 1
    assert out["delete_older"] == 2  # the moved record (day 2) and the sibling (day 4), not the odd scope (day 5)
    assert out["left"] == ["odd / scope: name"]
    assert [c for c, _ in out["asearch"]] == ["async saved"] and out["adelete"] == 1
    assert out["after_reset_scope"] == 0 and out["after_reset"] == 0


def test_crewai_memory_over_the_storage(python, srv, ns):
    out = drive(python, "memory", url=srv.url, api_key=srv.keys["a"], ns=ns)
    assert out["recall"] == ["We chose PostgreSQL for the user database"]
    assert out["scopes"] == ["/project/db", "/project/ops"]
    assert out["stored"] == ["Staging runs on port 8080", "We chose PostgreSQL for the user database"]
    assert out["forgot"] == 1
    assert out["stored_after_forget"] == ["We chose PostgreSQL for the user database"]


def test_a_read_only_key_is_refused_on_save(python, srv, ns):
    out = drive(python, "readonly_storage", url=srv.url, api_key=srv.keys["a_read"], ns=ns)
    assert out["count"] == 0 and out["save"] == "ForbiddenError"


def test_two_tenants_never_see_each_others_memory(python, srv, ns):
    out = drive(python, "tenant_storage", url=srv.url, api_key=srv.keys["a"], other_key=srv.keys["b"], ns=ns)
    assert out["b_get"] is None and out["b_search"] == 0 and out["b_count"] == 0
    assert out["a_after_b_reset"] == 1 and out["a_get"] == "a's secret"
