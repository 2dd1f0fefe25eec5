"""semvec §5.1–5.21: health, run/store, session lifecycle and control, export/import/verify, entities."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import AliasChoices, BaseModel, Field

from ...engine.sessions import entities, portable
from ...services import Services
from ..kit import validation
from . import wire
from .wire import Call, Route

SESSION_ID = r"^[A-Za-z0-9_-]+$"
Vector = list[float]


class RunBody(BaseModel):
    message: str = Field(min_length=1, max_length=65_536)
    session_id: Optional[str] = Field(None, max_length=128, pattern=SESSION_ID)
    response: Optional[str] = Field(None, max_length=65_536)
    short_circuit_threshold: float = Field(0.85, ge=-1, le=1)
    reset_context: bool = False
    user_id: Optional[str] = Field(None, max_length=128)


class StoreBody(BaseModel):
    session_id: str = Field(max_length=128)
    response: str = Field(min_length=1, max_length=65_536)
    user_id: Optional[str] = Field(None, max_length=128)
    dedup_threshold: Optional[float] = Field(None, ge=-1, le=1)


class Policy(BaseModel):
    embedding: Optional[Vector] = None
    text: Optional[str] = Field(None, max_length=65_536)
    weight: float = Field(1.0, ge=0, le=10)
    promote: bool = True


class CreateBody(BaseModel):
    session_id: Optional[str] = Field(None, max_length=128, pattern=SESSION_ID)
    dimension: Optional[int] = Field(None, ge=1, le=16_384)
    model_name: str = Field("all-MiniLM-L6-v2", max_length=256)
    use_cortex: bool = Field(False, validation_alias=AliasChoices("use_cortex", "use_meta_pss"))
    enable_topic_switch: bool = True
    template_embedding: Optional[Vector] = None
    template_text: Optional[str] = Field(None, max_length=65_536)
    policy_vectors: Optional[list[Policy]] = Field(None, max_length=64)


class TriggerBody(BaseModel):
    keyword: Optional[str] = Field(None, min_length=1, max_length=65_536)
    embedding: Optional[Vector] = None
    text: Optional[str] = Field(None, max_length=65_536)
    threshold: float = Field(0.8, ge=-1, le=1)


class AnchorBody(BaseModel):
    embedding: Optional[Vector] = None
    text: Optional[str] = Field(None, max_length=65_536)


class IsolationBody(BaseModel):
    level: Literal["OPEN", "FILTER", "QUARANTINE", "LOCKDOWN"]
    exclusion_embeddings: Optional[list[Vector]] = Field(None, max_length=256)
    allowlist_embeddings: Optional[list[Vector]] = Field(None, max_length=256)
    exclusion_texts: Optional[list[str]] = Field(None, max_length=256)
    allowlist_texts: Optional[list[str]] = Field(None, max_length=256)
    similarity_threshold: float = Field(0.7, ge=-1, le=1)


class MemoryBody(BaseModel):
    text: str = Field(min_length=1, max_length=65_536)
    embedding: Optional[Vector] = None
    tier: Literal["short_term", "medium_term", "long_term"] = "short_term"
    importance: float = Field(0.5, ge=0, le=1)
    access_count: int = Field(0, ge=0)


class ImportBody(BaseModel):
    state_dict: dict[str, Any]


class VerifyBody(BaseModel):
    test_embeddings: list[Vector] = Field(default_factory=list, max_length=256)
    test_texts: list[str] = Field(default_factory=list, max_length=256)
    sample_size: int = Field(32, ge=1, le=1000)


class EntityBody(BaseModel):
    key: str = Field(min_length=1, max_length=512)
    kind: Literal["variable", "function", "class", "path", "error", "signature", "constant", "type"]
    value: str = Field(max_length=65_536)
    context: str = Field("", max_length=65_536)
    importance: float = Field(1.0, ge=0, le=10)


class ContextQuery(BaseModel):
    session_id: str
    top_k: int = Field(5, ge=1, le=50)
    full_first: bool = False
    max_text_chars: int = Field(500, ge=1, le=100_000)


class EntityQuery(BaseModel):
    q: str = Field("", max_length=65_536)
    max_results: int = Field(20, ge=1, le=1000)


def routes(svc: Services) -> list[Route]:
    engine = svc.sessions

    async def health(c: Call):
        return wire.json({"status": "ok", "active_sessions": await engine.count(), "version": "1.0.0"})

    async def run(c: Call):
        b = await c.body(RunBody)
        return wire.json(await engine.run(c.tenant, b.message, b.session_id, b.response or None,
                                          b.short_circuit_threshold, b.reset_context, b.user_id))

    async def store(c: Call):
        b = await c.body(StoreBody)
        await engine.store_turn(c.tenant, b.session_id, b.response, b.user_id, b.dedup_threshold)
        return wire.json({"session_id": b.session_id})

    async def create(c: Call):
        data = await c.json_body()
        if isinstance(data, dict) and data.get("session_id") == "":
            data = {**data, "session_id": None}
        b = validation.validate(CreateBody, {} if data is None else data, "body")
        if b.dimension is not None and b.dimension != engine.dimension:
            raise wire.fail(422, f"dimension {b.dimension} does not match the server embedder's dimension {engine.dimension}")
        template = None
        if b.template_embedding is not None:
            template = engine.vector(b.template_embedding)
        elif b.template_text is not None:
            template = await engine.text_vector(b.template_text)
        policies = []
        for i, p in enumerate(b.policy_vectors or []):
            if p.embedding is None and p.text is None:
                raise validation.RequestInvalid([validation.missing(["body", "policy_vectors", i, "embedding"])])
            v = engine.vector(p.embedding) if p.embedding is not None else await engine.text_vector(p.text or "")
            policies.append({"embedding": v.tolist(), "weight": p.weight, "promote": p.promote})
        config = {"model_name": b.model_name, "use_cortex": b.use_cortex, "enable_topic_switch": b.enable_topic_switch,
                  "template_embedding": None if template is None else template.tolist(), "policy_vectors": policies}
        sid, created = await engine.create(c.tenant, b.session_id, "session", config, template)
        return wire.json({"session_id": sid, "created": created})

    async def delete(c: Call):
        sid = c.params["session_id"]
        await engine.delete(c.tenant, sid)
        return wire.json({"session_id": sid})

    async def metrics(c: Call):
        return wire.json(await engine.metrics(c.tenant, c.params["session_id"]))

    async def context(c: Call):
        q = c.query(ContextQuery)
        items = await engine.context(c.tenant, q.session_id, q.top_k, q.full_first, q.max_text_chars)
        return wire.json({"session_id": q.session_id, "context": items})

    async def memory(c: Call):
        return wire.json(await engine.memory(c.tenant, c.params["session_id"], c.params["memory_hash"]))

    async def add_trigger(c: Call):
        b = await c.body(TriggerBody)
        sid = c.params["session_id"]
        await _exists(c, sid)
        if b.keyword is None and b.embedding is None and b.text is None:
            raise wire.fail(422, "keyword, embedding or text is required")
        vector = engine.vector(b.embedding) if b.embedding is not None else (
            await engine.text_vector(b.text) if b.text is not None else None)
        count = await engine.add_trigger(c.tenant, sid, b.keyword, vector, b.threshold)
        return wire.json({"session_id": sid, "trigger_count": count})

    async def clear_triggers(c: Call):
        sid = c.params["session_id"]
        await engine.clear_triggers(c.tenant, sid)
        return wire.json({"session_id": sid, "trigger_count": 0})

    async def add_anchor(c: Call):
        b = await c.body(AnchorBody)
        if b.embedding is None and b.text is None:
            raise validation.RequestInvalid([validation.missing(["body", "embedding"]) | {"input": c.data}])
        sid = c.params["session_id"]
        await _exists(c, sid)
        vector = engine.vector(b.embedding) if b.embedding is not None else await engine.text_vector(b.text or "")
        return wire.json({"session_id": sid, "anchor_count": await engine.add_anchor(c.tenant, sid, vector)})

    async def anchor_score(c: Call):
        return wire.json(await engine.anchor_score(c.tenant, c.params["session_id"]))

    async def isolation(c: Call):
        b = await c.body(IsolationBody)
        sid = c.params["session_id"]
        await _exists(c, sid)
        exclusion = await engine.vectors(b.exclusion_embeddings, b.exclusion_texts)
        allow = await engine.vectors(b.allowlist_embeddings, b.allowlist_texts)
        await engine.set_isolation(c.tenant, sid, b.level, exclusion, allow, b.similarity_threshold)
        return wire.json({"session_id": sid, "level": b.level})

    async def release(c: Call):
        sid = c.params["session_id"]
        return wire.json({"session_id": sid, "released_count": await engine.release(c.tenant, sid)})

    async def inject(c: Call):
        b = await c.body(MemoryBody)
        sid = c.params["session_id"]
        await _exists(c, sid)
        vector = engine.vector(b.embedding) if b.embedding is not None else None
        total = await engine.inject(c.tenant, sid, b.text, vector, b.tier, b.importance, b.access_count)
        return wire.json({"session_id": sid, "tier": b.tier, "total_memories": total})

    async def export(c: Call):
        sid = c.params["session_id"]
        state = await portable.export(engine, c.tenant, sid)
        return wire.json({"session_id": sid, "state_dict": state, "checksum": state["checksum"]})

    async def import_(c: Call):
        b = await c.body(ImportBody, wire.MAX_IMPORT_BODY)
        sid = c.params["session_id"]
        await portable.import_state(engine, c.tenant, sid, b.state_dict)
        return wire.json({"session_id": sid, "imported": True})

    async def verify(c: Call):
        b = await c.body(VerifyBody, optional=True)
        sid = c.params["session_id"]
        await _exists(c, sid)
        probes = await engine.vectors(b.test_embeddings, b.test_texts)
        return wire.json(await portable.verify(engine, c.tenant, sid, probes, b.sample_size))

    async def put_entity(c: Call):
        b = await c.body(EntityBody)
        sid = c.params["session_id"]
        size = await entities.put(engine, c.tenant, sid, b.key, b.kind, b.value, b.context, b.importance)
        return wire.json({"session_id": sid, "key": b.key, "size": size}, 201)

    async def list_entities(c: Call):
        q = c.query(EntityQuery)
        sid = c.params["session_id"]
        found, total = await entities.find(engine, c.tenant, sid, q.q, q.max_results)
        return wire.json({"session_id": sid, "entities": found, "total": total})

    async def delete_entity(c: Call):
        sid, key = c.params["session_id"], c.params["key"]
        await entities.remove(engine, c.tenant, sid, key)
        return wire.json({"session_id": sid, "key": key, "removed": True})

    async def _exists(c: Call, sid: str) -> None:
        """404 before the semantic checks of a body (vector errors come after existence, §3)."""
        await engine.get_state(c.tenant, sid)

    s = "/v1/session/{session_id}"
    return [
        Route("GET", "/v1/health", health),
        Route("POST", "/v1/run", run),
        Route("POST", "/v1/store", store),
        Route("POST", "/v1/session/create", create),
        Route("DELETE", s, delete),
        Route("GET", "/v1/metrics/{session_id}", metrics),
        Route("GET", "/v1/state/context", context),
        Route("GET", s + "/memories/{memory_hash}", memory),
        Route("POST", s + "/trigger", add_trigger),
        Route("DELETE", s + "/trigger", clear_triggers),
        Route("POST", s + "/anchor", add_anchor),
        Route("GET", s + "/anchor_score", anchor_score),
        Route("PUT", s + "/isolation", isolation),
        Route("POST", s + "/isolation/release", release),
        Route("POST", s + "/memory", inject),
        Route("GET", s + "/export", export),
        Route("POST", s + "/import", import_),
        Route("POST", s + "/verify", verify),
        Route("POST", s + "/entities", put_entity),
        Route("GET", s + "/entities", list_entities),
        Route("DELETE", s + "/entities/{key:path}", delete_entity),
    ]
