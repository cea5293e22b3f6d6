"""v1 jobs, and executing them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from jobport.api.auth import require
from jobport.api.v1 import wire
from jobport.domain.access import Principal
from jobport.domain.executions import Trigger
from jobport.domain.jobs import JobSpec
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/projects/{project}/jobs", tags=["jobs"])


@router.get("")
async def list_jobs(
    project: str,
    q: Annotated[str | None, Query(description="name contains (case-insensitive)")] = None,
    label: Annotated[str | None, Query(description="key:value")] = None,
    sort: Annotated[str, Query(description="name, createdAt or updatedAt; '-' reverses")] = "name",
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    page = job_service.list_page(
        rt, project, name_contains=q, label=label, sort=sort, cursor=cursor, limit=limit
    )
    return wire.page(page, wire.job)


@router.post("", status_code=201)
async def create_job(
    project: str,
    spec: JobSpec,
    response: Response,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    row = job_service.create(rt, project, spec.wire())
    response.headers["Location"] = f"/api/v1/projects/{project}/jobs/{row['id']}"
    return wire.job(row)


@router.get("/{job}")
async def get_job(
    project: str,
    job: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    return wire.job(job_service.get(rt, project, job))


@router.patch("/{job}")
async def patch_job(
    project: str,
    job: str,
    changes: Annotated[dict[str, Any], Body(description="top-level job fields to replace")],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    return wire.job(job_service.patch(rt, project, job, changes))


@router.delete("/{job}", status_code=204)
async def delete_job(
    project: str,
    job: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> Response:
    job_service.delete(rt, project, job)
    return Response(status_code=204)


@router.post(
    "/{job}/execute",
    status_code=202,
    responses={
        200: {"description": "finished within `wait`, or a replayed id/key"},
        202: {"description": "queued or still running"},
        409: {"description": "concurrencyPolicy forbid: already running"},
    },
)
async def execute_job(
    project: str,
    job: str,
    body: Annotated[wire.ExecuteRequest | None, Body()] = None,
    wait: Annotated[float | None, Query(ge=0, description="seconds to wait for the end")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:execute"),
) -> JSONResponse:
    body = body or wire.ExecuteRequest()
    # Off the event loop: the insert may wait for the database's write lock.
    row, created = await asyncio.to_thread(
        execution_service.start,
        rt,
        project,
        job,
        parameters=body.parameters,
        mode=body.mode,
        execution_id=body.execution_id,
        idempotency_key=idempotency_key,
        trigger=Trigger.API,
        principal=caller.label,
    )
    if wait:
        row = await execution_service.wait(rt, row["id"], wait)
    finished = row["status"] in {"succeeded", "failed", "cancelled", "timed_out"}
    status = 200 if (not created or (wait and finished)) else 202
    return JSONResponse(
        wire.execution(row),
        status_code=status,
        headers={"Location": f"/api/v1/executions/{row['id']}"},
    )
