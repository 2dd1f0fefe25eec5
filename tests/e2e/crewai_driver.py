"""Drive the real crewai package (PyPI crewai 1.15.30) over Stigmer for tests/e2e/test_crewai_*.py.

Runs in crewai's own virtual environment (crewai pins pydantic<2.13, the server pins 2.14.4), with our `src`
on PYTHONPATH: the SDK needs only httpx and msgspec. Reads `{"scenario", ...arguments}` on stdin, runs that
scenario against the real server and prints one JSON object of what it observed; the tests assert on it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta

from crewai.memory.storage.backend import StorageBackend
from crewai.memory.types import MemoryRecord

from stigmer.client import Client
from stigmer.integrations.crewai import StigmerMemoryStorage, stigmer_tools


def tools_by_name(client, **kw):
    return {t.name: t for t in stigmer_tools(client, **kw)}


def scenario_tools(doc):
    with Client(doc["url"], api_key=doc.get("api_key")) as c:
        t = tools_by_name(c, namespace=doc["ns"], subject_id=doc.get("subject"))
        out = {}
        run = lambda name, **kw: json.loads(t[name].run(**kw))  # noqa: E731  run() validates args_schema
        out["absent"] = run("stigmer_read", key="plan")
        out["create"] = run("stigmer_write", key="plan", value={"step": 1}, expected_version=0)
        out["create_again"] = run("stigmer_write", key="plan", value={"step": 9}, expected_version=0)
        out["update"] = run("stigmer_write", key="plan", value={"step": 2}, expected_version=1)
        out["stale_update"] = run("stigmer_write", key="plan", value={"step": 9}, expected_version=1)
        out["unguarded"] = json.loads(t["stigmer_write"]._run(key="free", value=[1, 2]))
        out["read"] = run("stigmer_read", key="plan")
        lease = run("stigmer_lease_acquire", resource="plan-lock", holder="writer", ttl=30)
        out["lease"] = lease
        out["second_holder"] = run("stigmer_lease_acquire", resource="plan-lock", holder="other", ttl=30)
        out["fenced"] = run("stigmer_write", key="plan", value={"step": 3}, fence=lease["fence"])
        out["released"] = run("stigmer_lease_release", resource="plan-lock", lease_id=lease["lease_id"])
        out["stale_fence"] = run("stigmer_write", key="plan", value={"step": 4}, fence=lease["fence"])
        out["async_read"] = json.loads(asyncio.run(t["stigmer_read"].arun(key="plan")))
        out["memories"] = run("stigmer_memory_search", query="Initech")
        out["newest"] = run("stigmer_memory_search", query="", limit=1)
        out["other_subject"] = run("stigmer_memory_search", query="Initech", subject_id="nobody")
        out["no_subject"] = json.loads(tools_by_name(c, namespace=doc["ns"])["stigmer_memory_search"].run(query="x"))
        try:
            t["stigmer_write"].run(key="plan")  # value missing: the schema refuses before any request
            out["bad_args"] = None
        except ValueError as exc:
            out["bad_args"] = str(exc)[:200]
        out["schema"] = sorted(t["stigmer_write"].args_schema.model_json_schema()["properties"])
        return out


def scenario_tenant_tools(doc):
    """Two clients (two keys): what the second sees of the first's key and memories."""
    with Client(doc["url"], api_key=doc["api_key"]) as a, Client(doc["url"], api_key=doc["other_key"]) as b:
        ta, tb = tools_by_name(a, namespace=doc["ns"]), tools_by_name(b, namespace=doc["ns"])
        out = {"a_write": json.loads(ta["stigmer_write"].run(key="k", value="a's"))}
        out["b_read"] = json.loads(tb["stigmer_read"].run(key="k"))
        out["b_write"] = json.loads(tb["stigmer_write"].run(key="k", value="b's", expected_version=0))
        out["a_read"] = json.loads(ta["stigmer_read"].run(key="k"))
        out["a_memories"] = json.loads(ta["stigmer_memory_search"].run(query="Initech", subject_id=doc["subject"]))
        out["b_memories"] = json.loads(tb["stigmer_memory_search"].run(query="Initech", subject_id=doc["subject"]))
        return out


def rec(content, scope, embedding, **kw):
    return MemoryRecord(content=content, scope=scope, embedding=embedding, **kw)


def scenario_storage(doc):
    with Client(doc["url"], api_key=doc.get("api_key")) as c:
        s = StigmerMemoryStorage(c, namespace=doc["ns"])
        out = {"is_backend": isinstance(s, StorageBackend)}
        t0 = datetime(2026, 1, 1)
        records = [
            rec("postgres chosen", "/project/db", [1.0, 0.0], categories=["decision"], metadata={"by": "ana"},
                created_at=t0),
            rec("port 8080 for staging", "/project/ops", [0.0, 1.0], categories=["config"], created_at=t0 + timedelta(1)),
            rec("rate limit 1000/min", "/project", [0.6, 0.8], categories=["config", "api"], metadata={"by": "ana"},
                created_at=t0 + timedelta(2)),
            rec("sibling scope", "/projectx", [1.0, 0.0], created_at=t0 + timedelta(3)),
            rec("odd / scope: name", "/a b/c:d%", [1.0, 0.0], created_at=t0 + timedelta(4)),
        ]
        s.save(records)
        ids = [r.id for r in records]
        got = s.get_record(ids[0])
        out["get"] = got.model_dump(mode="json") | {"embedding": got.embedding}
        out["get_absent"] = s.get_record("no-such-id")
        hits = lambda res: [(r.content, round(score, 6)) for r, score in res]  # noqa: E731
        out["search_all"] = hits(s.search([1.0, 0.0], limit=10))
        out["search_scope"] = hits(s.search([1.0, 0.0], scope_prefix="/project"))
        out["search_category"] = hits(s.search([1.0, 0.0], categories=["config"]))
        out["search_metadata"] = hits(s.search([1.0, 0.0], metadata_filter={"by": "ana"}, limit=1))
        out["search_min_score"] = hits(s.search([1.0, 0.0], min_score=0.9))
        out["search_odd_scope"] = hits(s.search([1.0, 0.0], scope_prefix="/a b/c:d%"))
        out["list"] = [r.content for r in s.list_records("/project")]
        out["list_page"] = [r.content for r in s.list_records(limit=2, offset=1)]
        info = s.get_scope_info("/project")
        out["info"] = info.model_dump(mode="json")
        out["scopes_root"] = s.list_scopes("/")
        out["scopes_project"] = s.list_scopes("/project")
        out["categories"] = s.list_categories("/project")
        out["count"] = [s.count(), s.count("/project"), s.count("/project/db"), s.count("/nothing")]
        moved = records[1].model_copy(update={"scope": "/archive", "content": "port 9090 for staging"})
        s.update(moved)
        out["after_update"] = [s.get_record(ids[1]).content, s.get_record(ids[1]).scope, s.count("/project/ops"),
                               s.count()]
        out["delete_ids"] = s.delete(record_ids=[ids[0], "no-such-id"])
        out["delete_category"] = s.delete(scope_prefix="/project", categories=["api"])
        out["delete_older"] = s.delete(older_than=t0 + timedelta(3, hours=12))
        out["left"] = sorted(r.content for r in s.list_records())
        asyncio.run(s.asave([rec("async saved", "/async", [0.0, 1.0])]))
        out["asearch"] = hits(asyncio.run(s.asearch([0.0, 1.0], scope_prefix="/async")))
        out["adelete"] = asyncio.run(s.adelete(scope_prefix="/async"))
        s.reset("/a b")
        out["after_reset_scope"] = s.count()
        s.reset()
        out["after_reset"] = s.count()
        return out


def toy_embedder(texts):
    """A deterministic embedding (letter counts): enough to drive Memory without a model."""
    out = []
    for text in texts:
        v = [float(text.lower().count(ch)) for ch in "abcdefghijklmnopqrstuvwxyz"]
        norm = sum(x * x for x in v) ** 0.5 or 1.0
        out.append([x / norm for x in v])
    return out


def scenario_memory(doc):
    """CrewAI's own `Memory` over the storage: remember with explicit scope, categories and importance (no
    LLM analysis), recall shallow (vector search, no LLM), forget, and what another process then sees."""
    from crewai.memory.unified_memory import Memory

    with Client(doc["url"], api_key=doc.get("api_key")) as c:
        memory = Memory(storage=StigmerMemoryStorage(c, namespace=doc["ns"]), embedder=toy_embedder)
        out = {}
        for text, scope in [("We chose PostgreSQL for the user database", "/project/db"),
                            ("Staging runs on port 8080", "/project/ops")]:
            memory.remember(text, scope=scope, categories=["fact"], importance=0.7)
        memory.drain_writes()  # remember() already waits for its save; this makes it explicit
        out["recall"] = [m.record.content for m in memory.recall("PostgreSQL database", depth="shallow", limit=1)]
        out["scopes"] = memory.list_scopes("/project")
        fresh = StigmerMemoryStorage(c, namespace=doc["ns"])  # what any other process sees
        out["stored"] = sorted(r.content for r in fresh.list_records())
        out["forgot"] = memory.forget(scope="/project/ops")
        out["stored_after_forget"] = sorted(r.content for r in fresh.list_records())
        memory.close()
        return out


def scenario_tenant_storage(doc):
    with Client(doc["url"], api_key=doc["api_key"]) as a, Client(doc["url"], api_key=doc["other_key"]) as b:
        sa, sb = StigmerMemoryStorage(a, namespace=doc["ns"]), StigmerMemoryStorage(b, namespace=doc["ns"])
        r = rec("a's secret", "/team", [1.0, 0.0])
        sa.save([r])
        out = {"b_get": sb.get_record(r.id), "b_search": len(sb.search([1.0, 0.0])), "b_count": sb.count()}
        sb.reset()
        out["a_after_b_reset"] = sa.count()
        out["a_get"] = sa.get_record(r.id).content
        return out


def scenario_readonly_storage(doc):
    with Client(doc["url"], api_key=doc["api_key"]) as c:
        s = StigmerMemoryStorage(c, namespace=doc["ns"])
        out = {"count": s.count()}
        try:
            s.save([rec("not allowed", "/x", [1.0])])
            out["save"] = "saved"
        except Exception as exc:  # the SDK's ForbiddenError reaches CrewAI as it is
            out["save"] = type(exc).__name__
        out["tool_write"] = json.loads(tools_by_name(c, namespace=doc["ns"])["stigmer_write"].run(key="k", value=1))
        out["tool_read"] = json.loads(tools_by_name(c, namespace=doc["ns"])["stigmer_read"].run(key="k"))
        return out


if __name__ == "__main__":
    doc = json.load(sys.stdin)
    print(json.dumps(globals()["scenario_" + doc["scenario"]](doc), default=str))
