"""v1 audit log: every write and every refused credential, filtered, newest first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from jobport.api.auth import require
from jobport.api.v1 import wire
from jobport.domain.access import Principal
from jobport.domain.audit import AuditEntry
from jobport.services import audit
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def render(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": wire.ts(entry.at),
        "principal": entry.principal,
        "address": entry.address,
        "action": entry.action,
        "target": entry.target,
        "projectId": entry.project_id,
        "outcome": entry.outcome,
        "status": entry.status,
        "details": entry.details,
    }


@router.get("")
async def list_audit(
    principal: str | None = Query(None, description="e.g. apiKey:<clientId> or user:<name>"),
    action: str | None = Query(None, description="e.g. execute_job, create_key, login"),
    outcome: str | None = Query(
        None, description="ok, denied or failed", json_schema_extra={"enum": list(audit.OUTCOMES)}
    ),
    target: str | None = Query(None, description="path contains"),
    since: wire.UtcDateTime | None = None,
    until: wire.UtcDateTime | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("audit:read"),
) -> dict[str, Any]:
    page = audit.list_page(
        rt,
        principal=principal,
        action=action,
        outcome=outcome,
        target=target,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return wire.page(page, render)
