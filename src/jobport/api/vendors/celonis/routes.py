"""Celonis's routes: the documented data-job execute and job status, the calls pycelonis 2.x
makes (execute, cancel, the pool's job statuses, a job's executions, an execution's items and
their log), and /oauth2/token; each parses, calls one service, and answers a transport."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Query, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from jobport.api import errors, oauth
from jobport.api.auth import public, require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.api.vendors.celonis.transports import (
    LEVELS,
    celonis_error,
    extraction_mode,
    invalid,
    oauth_error,
    pages,
    render_job,
    render_job_item,
    render_log_line,
    render_pool,
    render_task_items,
    status_word,
)
from jobport.domain.access import Principal
from jobport.domain.executions import ACTIVE, Execution, LogLine, StartRequest, Trigger
from jobport.domain.jobs import Job
from jobport.domain.projects import Project
from jobport.errors import Conflict, NotFound
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services import projects as project_service
from jobport.services import starts
from jobport.services.runtime import Runtime

router = APIRouter(include_in_schema=False)

_POOL = "/integration/api/pools/{project}"
# The executions of a job are read a page of this many at a time, and at most _MOST_RUNS
# of the newest: Celonis pages by number, jobport's store by cursor.
_RUN_BATCH = 500
_MOST_RUNS = 10_000
# An execution item's log is read from its newest _MOST_LINES lines.
_MOST_LINES = 50_000

errors.face(("/integration/",), celonis_error)
errors.face(("/oauth2/token",), oauth_error)


# --- executing -------------------------------------------------------------------------------


class ExecutionConfiguration(BaseModel):
    """pycelonis's JobExecutionConfiguration; fields jobport has no use for are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    mode: str | None = None
    execute_only_subset_of_transformations: bool | None = None
    execute_only_subset_of_extractions: bool | None = None
    load_only_subset_of_data_models: bool | None = None


async def _start(rt: Runtime, project: str, job: str, mode: str, caller: Principal) -> Execution:
    execution, _ = await starts.start(
        rt,
        project,
        job,
        StartRequest(mode=mode, trigger=Trigger.API, principal=caller.label),
    )
    return execution


async def execute_data_job(
    project: str,
    job: str,
    mode: Annotated[str | None, Query()] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:execute"),
) -> dict[str, Any]:
    """The documented execute: the mode in the query, FULL or DELTA (required, as the docs
    say). Answers the run's execution item."""
    execution = await _start(rt, project, job, extraction_mode(mode), caller)
    pool = await asyncio.to_thread(project_service.get, rt, project)
    return render_job_item(execution, pool)


for _version in ("v1", "v2"):  # the docs' example has named both
    router.add_api_route(
        f"/integration/api/{_version}/data-pools/{{project}}/data-jobs/{{job}}/execute",
        execute_data_job,
        methods=["POST"],
        name=f"celonis_execute_{_version}",
    )


@router.post(_POOL + "/jobs/{job}/execute", name="celonis_execute_job")
async def execute_job(
    project: str,
    job: str,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:execute"),
) -> dict[str, Any]:
    """pycelonis's `Job.execute`: a JobExecutionConfiguration, mode DELTA unless it says."""
    try:
        config = ExecutionConfiguration.model_validate(body or {})
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "body"
        raise invalid(field, problem["msg"], f"{field}: {problem['msg']}") from None
    subset = [
        name
        for name, asked in (
            ("executeOnlySubsetOfTransformations", config.execute_only_subset_of_transformations),
            ("executeOnlySubsetOfExtractions", config.execute_only_subset_of_extractions),
            ("loadOnlySubsetOfDataModels", config.load_only_subset_of_data_models),
        )
        if asked
    ]
    if subset:
        # Running every step when a few were asked for would do what nobody asked.
        raise invalid(
            subset[0],
            "jobport runs a data job's steps all together",
            f"{subset[0]}: jobport runs a data job's steps all together, not a subset",
            code="unsupported",
        )
    execution = await _start(rt, project, job, extraction_mode(config.mode or "DELTA"), caller)
    pool = await asyncio.to_thread(project_service.get, rt, project)
    return render_job_item(execution, pool)


@router.post(_POOL + "/jobs/{job}/cancel", name="celonis_cancel_job")
def cancel_job(
    project: str,
    job: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:cancel"),
) -> dict[str, Any]:
    """Cancel the job's queued and running executions; answers the job, as it is now."""
    found = job_service.get(rt, project, job)
    active = execution_service.list_page(
        rt, project, job_ref=found.id, statuses=[s.value for s in ACTIVE], limit=500
    )
    for execution in active.items:
        with contextlib.suppress(Conflict):  # it ended meanwhile: nothing left to cancel
            execution_service.cancel(rt, execution.id)
    return render_job(job_service.get(rt, project, found.id))


# --- reading ---------------------------------------------------------------------------------


@router.get(_POOL, name="celonis_get_pool")
def get_pool(
    project: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("projects:read"),
) -> dict[str, Any]:
    return render_pool(project_service.get(rt, project))


def _all_jobs(rt: Runtime, project: str) -> list[Job]:
    jobs: list[Job] = []
    cursor = None
    while True:
        page = job_service.list_page(rt, project, cursor=cursor, limit=500)
        jobs.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return jobs


@router.get(_POOL + "/jobs", name="celonis_list_jobs")
def list_jobs(
    project: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> list[dict[str, Any]]:
    return [render_job(j) for j in _all_jobs(rt, project)]


@router.get(_POOL + "/jobs/{job}", name="celonis_get_job")
def get_job(
    project: str,
    job: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    """The documented job status: QUEUED, RUNNING, SUCCESS, CANCEL or FAIL of its newest run
    (null before its first), and that run's id."""
    return render_job(job_service.get(rt, project, job))


@router.get(_POOL + "/logs/status", name="celonis_job_statuses")
def job_statuses(
    project: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read"),
) -> list[dict[str, Any]]:
    """Every job of the pool with its newest run's status (EntityStatus): pycelonis polls it
    while a job runs, and looks for the job in it before it executes one."""
    return [
        {
            "id": j.id,
            "status": status_word(j.last_execution),
            "lastExecutionStartDate": wire.ts(j.last_execution.started_at)
            if j.last_execution
            else None,
        }
        for j in _all_jobs(rt, project)
    ]


@router.get(_POOL + "/logs/{job}/executions", name="celonis_job_executions")
def job_executions(
    project: str,
    job: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    page: Annotated[int, Query(ge=0)] = 0,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read"),
) -> dict[str, Any]:
    """The job's runs, newest first, as execution items a page at a time (`page` from 0)."""
    found = job_service.get(rt, project, job)
    pool = project_service.get(rt, project)
    runs: list[Execution] = []
    cursor = None
    while len(runs) < _MOST_RUNS:
        batch = execution_service.list_page(
            rt, project, job_ref=found.id, cursor=cursor, limit=_RUN_BATCH
        )
        runs.extend(batch.items)
        cursor = batch.next_cursor
        if cursor is None:
            break
    shown = runs[page * limit : (page + 1) * limit]
    return {
        "executionItems": [render_job_item(e, pool) for e in shown],
        "numOfPages": pages(len(runs), limit),
    }


def _execution_in(rt: Runtime, project: str, execution_id: str | None) -> tuple[Execution, Project]:
    if not execution_id:
        raise invalid("executionId", "required", "executionId is required")
    pool = project_service.get(rt, project)
    execution = execution_service.get(rt, execution_id)
    if execution.project_id != pool.id:
        # Another pool's run is not found here, as with an id that names none.
        raise NotFound(f"no execution {execution_id!r}", code="execution_not_found")
    return execution, pool


def _type(value: str | None) -> str | None:
    if value is not None and value not in ("SCHEDULE", "JOB", "TASK", "STEP"):
        raise invalid("type", "must be SCHEDULE, JOB, TASK or STEP", f"type {value!r} is not known")
    return value


@router.get(_POOL + "/logs/executions", name="celonis_execution_items")
def execution_items(
    project: str,
    execution_id: Annotated[str | None, Query(alias="executionId")] = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
    id_: Annotated[str | None, Query(alias="id")] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read"),
) -> list[dict[str, Any]]:
    """An execution's items: the JOB, and its steps as TASKs; `id` names the job (for JOB
    and TASK items). jobport's steps have no steps of their own: STEP and SCHEDULE are none."""
    kind = _type(type_)
    execution, pool = _execution_in(rt, project, execution_id)
    if id_ is not None and id_ != execution.job_id:
        return []
    items = []
    if kind in (None, "JOB"):
        items.append(render_job_item(execution, pool))
    if kind in (None, "TASK"):
        items.extend(render_task_items(execution, pool))
    return items


@router.get(_POOL + "/logs/executions/detail", name="celonis_execution_log")
def execution_log(
    project: str,
    request: Request,
    execution_id: Annotated[str | None, Query(alias="executionId")] = None,
    id_: Annotated[str | None, Query(alias="id")] = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page: Annotated[int, Query(ge=0)] = 0,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read"),
) -> dict[str, Any]:
    """An execution item's log, newest first (pycelonis reads the first line of a failed
    task as its error): a TASK's is its step's lines, a JOB's every line of the run.
    `logLevels` (repeated or comma-separated) keeps only those levels."""
    kind = _type(type_)
    levels = {v for raw in request.query_params.getlist("logLevels") for v in raw.split(",") if v}
    unknown = sorted(levels - set(LEVELS))
    if unknown:
        raise invalid(
            "logLevels", "must be DEBUG, INFO, WARNING or ERROR", f"unknown log level {unknown}"
        )
    execution, _ = _execution_in(rt, project, execution_id)
    if kind == "TASK" and id_ is None:
        raise invalid("id", "required for a TASK: the task's id", "id is required for a TASK")
    if kind in ("STEP", "SCHEDULE") or (kind == "JOB" and id_ not in (None, execution.job_id)):
        lines: list[LogLine] = []
    else:
        lines = _newest_lines(rt, execution)
        if kind == "TASK":
            lines = [ln for ln in lines if ln.step == id_]
    if levels:
        lines = [ln for ln in lines if ln.level.upper() in levels]
    lines.reverse()
    shown = lines[page * limit : (page + 1) * limit]
    return {
        "logMessages": [render_log_line(execution.id, ln) for ln in shown],
        "numOfPages": pages(len(lines), limit),
    }


def _newest_lines(rt: Runtime, execution: Execution) -> list[LogLine]:
    after = max(0, execution.log_lines - _MOST_LINES)
    lines: list[LogLine] = []
    while True:
        batch, _ = execution_service.logs(rt, execution.id, after=after, limit=10_000)
        lines.extend(batch)
        if len(batch) < 10_000:
            return lines
        after = batch[-1].seq


# --- OAuth -----------------------------------------------------------------------------------

# Celonis's scope for these routes; its token carries the key's own rights.
_CELONIS_SCOPE = "integration.data-pools"


async def token(
    request: Request,
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    rt: Runtime = Depends(wire.runtime),
    _: None = public("the token endpoint is where a key gets a token"),
) -> JSONResponse:
    """Client credentials as /connect/token takes them (form or HTTP Basic); the scope
    `integration.data-pools` asks for the key's own rights, any other is jobport's."""
    asked = [s for s in (scope or "").split() if s != _CELONIS_SCOPE]
    return await oauth.token(
        request,
        grant_type=grant_type,
        client_id=client_id,
        client_secret=client_secret,
        scope=" ".join(asked) or None,
        rt=rt,
        _=None,
    )


router.add_api_route("/oauth2/token", token, methods=["POST"], name="celonis_token")
