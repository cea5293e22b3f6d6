"""v1 jobs, and executing them; a job's JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Response

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.api.v1.executions import render as render_execution
from jobport.api.v1.executions import render_listed as render_listed_execution
from jobport.api.v1.schedules import schedule_summary
from jobport.domain.access import Principal
from jobport.domain.executions import FINAL_STATUSES, StartRequest, Trigger
from jobport.domain.jobs import Job, JobSpec
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services import starts
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/projects/{project}/jobs", tags=["jobs"])
# Stated for the reader; the service checks it (`invalid_sort`): a key, '-' to reverse.
_SORT = {"pattern": "^-*(" + "|".join(job_service.sort_keys()) + ")$"}


JobPatch = wire.patch_model(
    "JobPatch",
    JobSpec,
    "Top-level fields of the job to replace; the others keep their values.",
)

# The examples make a project's first job and run it; other examples name them.
_JOB_EXAMPLES = {
    "hello": openapi.example(
        "A job with one harmless command step",
        {
            "name": "hello",
            "description": "says hello",
            "steps": [{"name": "greet", "kind": "command", "config": {"command": "echo hello"}}],
        },
    )
}
_PATCH_EXAMPLES = {
    "describe": openapi.example("Change the description", {"description": "says hello, politely"})
}
_EXECUTE_EXAMPLES = {
    "example-run": openapi.example(
        "Run it, with an id of the caller's choosing (a retry with it starts nothing new)",
        {"executionId": "example-run", "parameters": {}, "mode": "full"},
    )
}


def render(job: Job) -> dict[str, Any]:
    """A job as v1 shows it: its definition as stored, its newest run, and its schedules
    when they were read (a single job, not a listing)."""
    last = job.last_execution
    out = {
        "id": job.id,
        "projectId": job.project_id,
        **job.definition,
        "createdAt": wire.ts(job.created_at),
        "updatedAt": wire.ts(job.updated_at),
        "lastExecution": render_listed_execution(last) if last else {},
    }
    if job.schedules is not None:
        out["schedules"] = [schedule_summary(s) for s in job.schedules]
    return out


@router.get("")
async def list_jobs(
    project: str,
    q: Annotated[str | None, Query(description="name contains (case-insensitive)")] = None,
    label: Annotated[
        str | None, Query(description="key:value", json_schema_extra={"pattern": "^[^:]+:"})
    ] = None,
    sort: Annotated[
        str,
        Query(
            description="name, createdAt or updatedAt; '-' reverses",
            json_schema_extra=_SORT,
        ),
    ] = "name",
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    page = job_service.list_page(
        rt, project, name_contains=q, label=label, sort=sort, cursor=cursor, limit=limit
    )
    return wire.page(page, render)


@router.post("", status_code=201, responses={409: {"description": "a job of that name exists"}})
# The service reads the body itself, so a mistake in a job is `invalid_job` with one
# {field, reason} per problem, as from the CLI and the SDK; the document still shows JobSpec.
@openapi.body(JobSpec, _JOB_EXAMPLES)
async def create_job(
    project: str,
    body: Annotated[dict[str, Any], Body()],
    response: Response,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    job = job_service.create(rt, project, body)
    response.headers["Location"] = f"/api/v1/projects/{project}/jobs/{job.id}"
    return render(job)


@router.get("/{job}")
async def get_job(
    project: str,
    job: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    return render(job_service.get(rt, project, job))


@router.patch(
    "/{job}",
    responses={409: {"description": "a job of that name exists, or the job changed meanwhile"}},
)
# As on create: a mistake in the fields is the service's `invalid_job`.
@openapi.body(JobPatch, _PATCH_EXAMPLES)
async def patch_job(
    project: str,
    job: str,
    body: Annotated[dict[str, Any], Body()],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    return render(job_service.patch(rt, project, job, body))


@router.delete(
    "/{job}",
    status_code=204,
    responses={409: {"description": "executions of the job are queued or running"}},
)
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
        409: {
            "description": "concurrencyPolicy forbid: already running; or the executionId "
            "or Idempotency-Key names a run of another job"
        },
    },
)
async def execute_job(
    project: str,
    job: str,
    body: Annotated[wire.ExecuteRequest | None, Body(openapi_examples=_EXECUTE_EXAMPLES)] = None,
    wait: Annotated[float | None, Query(ge=0, description="seconds to wait for the end")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:execute"),
) -> JSONResponse:
    return await start_run(rt, project, job, body, wait, idempotency_key, caller)


async def start_run(
    rt: Runtime,
    project: str,
    job: str,
    body: wire.ExecuteRequest | None,
    wait: float | None,
    idempotency_key: str | None,
    caller: Principal,
) -> JSONResponse:
    """What POST .../execute does once its input is read and its caller allowed (the route
    above, and api/fastpath.py for the usual requests)."""
    body = body or wire.ExecuteRequest()
    # Committed by the server's start queue with the starts of other requests (group commit).
    execution, created = await starts.start(
        rt,
        project,
        job,
        StartRequest(
            parameters=body.parameters,
            mode=body.mode,
            execution_id=body.execution_id,
            idempotency_key=idempotency_key,
            trigger=Trigger.API,
            principal=caller.label,
            context=body.context,
            foreach=body.foreach.model_dump(exclude_none=True) if body.foreach else None,
        ),
    )
    if wait:
        execution = await execution_service.wait(rt, execution.id, wait)
    finished = execution.status in FINAL_STATUSES
    status = 200 if (not created or (wait and finished)) else 202
    return JSONResponse(
        render_execution(execution),
        status_code=status,
        headers={"Location": f"/api/v1/executions/{execution.id}"},
    )
