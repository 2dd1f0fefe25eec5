"""The admin routes (specs/statewave.md §5.17): compile jobs, the null-tenant audit, export and import, the
webhook outbox. They filter only by their own `tenant_id` parameters, never by the tenant header, and see
only the Stigmer tenant of the key. GETs need the key's `read` scope, an import `write` (§3.1: no separate
admin role)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ...engine.memory.admin import DocumentRejected
from ...services import Services
from . import wire
from .surface import Call, Route, route


class JobsQuery(BaseModel):
    status: str | None = None
    subject_id: str | None = None
    tenant_id: str | None = None
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0)


class ExportQuery(BaseModel):
    tenant_id: str | None = None


class ImportBody(BaseModel):
    document: dict[str, Any]
    target_subject_id: str | None = None
    target_tenant_id: str | None = None
    preserve_ids: bool = True


def routes(svc: Services) -> list[Route]:
    admin = svc.memory_admin

    async def jobs(call: Call):
        q = wire.query(call.request, JobsQuery)
        page, total = await admin.jobs(call.tenant, q.status, q.subject_id, q.tenant_id, q.limit, q.offset)
        return wire.json({"jobs": page, "total": total, "limit": q.limit, "offset": q.offset})

    async def audit(call: Call):
        return wire.json(await admin.tenant_audit(call.tenant))

    async def export(call: Call):
        q = wire.query(call.request, ExportQuery)
        subject_id = call.params[0]
        doc = await admin.export(call.tenant, subject_id, q.tenant_id)
        if doc is None:
            raise wire.not_found(f"No data found for subject '{subject_id}'")
        return wire.json(doc)

    async def import_(call: Call):
        b = await wire.body(call.request, ImportBody)
        try:
            r = await admin.import_document(call.tenant, b.document, b.target_subject_id, b.target_tenant_id,
                                            b.preserve_ids)
        except DocumentRejected as exc:
            raise wire.fail(400, "bad_request", exc.message) from None
        return wire.json({"subject_id": r.subject_id, "tenant_id": r.tenant_id, "episodes_imported": r.episodes_imported,
                          "memories_imported": r.memories_imported, "ids_preserved": r.ids_preserved})

    async def webhook_stats(call: Call):
        return wire.json(await admin.webhook_stats(call.tenant))

    async def webhook_event(call: Call):
        event = await admin.webhook_event(call.tenant, call.params[0])
        if event is None:
            raise wire.not_found("Webhook event not found")
        return wire.json(event)

    return [route("GET", "/admin/jobs", jobs, query=JobsQuery), route("GET", "/admin/tenant-audit", audit),
            route("GET", "/admin/export/{subject_id}", export, query=ExportQuery), route("POST", "/admin/import", import_, "write", ImportBody),
            route("GET", "/admin/webhooks/stats", webhook_stats),
            route("GET", "/admin/webhooks/{event_id}", webhook_event)]
