"""The routes of Losant's resource-job API: list, post, get, patch, delete, execute,
cancelExecution and logs, at Losant's paths, answering its shapes and its errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import ValidationError

from jobport.api import errors
from jobport.api.auth import require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.api.vendors.losant import schema
from jobport.domain.access import Principal
from jobport.domain.executions import Execution, StartRequest, Status, Trigger
from jobport.domain.ids import object_id
from jobport.domain.jobs import Job
from jobport.errors import NotFound, error_details, invalid
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services import losant as losant_service
from jobport.services import projects as project_service
from jobport.services.access import authorization
from jobport.services.runtime import Runtime

# The routes are plain functions, run in FastAPI's thread pool: they read the database, and
# looking a dataTableId up may connect to the project's databases.
router = APIRouter(include_in_schema=False)

# `{project}` is Losant's applicationId: `require` checks the scope in that project.
_JOBS = "/applications/{project}/resource-jobs"
_JOB = _JOBS + "/{job}"

PER_PAGE = 100  # Losant's default page size
MOST_PER_PAGE = 1000  # and the largest a caller may ask for
MOST_LOGS = 1000  # execution logs one call returns at most

# --- errors ------------------------------------------------------------------------------------

# Losant's error `type` for each status this face answers; jobport's 409 (a name taken, runs
# still active), 413, 415 and 422 are Losant's 400: a request it will not carry out.
_TYPES = {
    400: "Validation",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    429: "RateLimit",
}
_AS_400 = {409, 413, 415, 422}
_NOT_FOUND = {
    "project_not_found": "Application was not found",
    "job_not_found": "Resource job was not found",
    "execution_not_found": "Execution was not found",
}


def losant_error(refusal: errors.Refusal) -> tuple[int, Any]:
    """`{"type", "message"}` with Losant's status codes."""
    status = 400 if refusal.status in _AS_400 else refusal.status
    kind = _TYPES.get(status, "ServerError" if status >= 500 else "Error")
    message = _NOT_FOUND.get(refusal.code, refusal.message)
    return status, {"type": kind, "message": message}


errors.face(("/applications/",), losant_error)


def _checked(model: type[Any], body: Any) -> Any:
    """`body` as a Losant schema model, or a 400 naming the first problem."""
    if not isinstance(body, dict):
        raise schema.refuse("body", "must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False))
        raise invalid(details, what="invalid request", code="invalid_request") from None


def _whole(field: str, value: str | None, default: int, low: int, high: int) -> int:
    """A query parameter Losant types as a string that holds a whole number in a range."""
    if value is None or value == "":
        return default
    if not re.fullmatch(r"\d{1,40}", value.strip()):
        raise schema.refuse(field, "must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise schema.refuse(field, f"must be between {low} and {high}")
    return number


def _resource_job(rt: Runtime, project: str, job_ref: str) -> Job:
    """The job, if it is a resource job (one with foreach); else 404."""
    job = job_service.get(rt, project, job_ref)
    if not job.definition.get("foreach"):
        raise NotFound("Resource job was not found", code="job_not_found")
    return job


def _table(rt: Runtime, project_id: str, data_table_id: str) -> dict[str, str]:
    table = losant_service.find_table(rt, project_id, schema.check_data_table_id(data_table_id))
    if table is None:
        raise schema.refuse(
            "dataTableId",
            "names no table of this application: the id of a table is the object id of "
            "<project id>/<connection>/<table>, for a table of one of its SQL connections",
        )
    return table


# --- resource jobs -----------------------------------------------------------------------------

_SORTS: dict[str, Any] = {
    "name": lambda job: job.name,
    "id": lambda job: object_id(job.id),
    "creationDate": lambda job: job.created_at,
    "lastUpdated": lambda job: job.updated_at,
    # Never run first (ascending), then by when the newest run was asked for.
    "lastExecutionRequested": lambda job: (
        (1, job.last_execution.created_at)
        if job.last_execution
        else (0, dt.datetime.min.replace(tzinfo=dt.UTC))
    ),
    "resourceType": lambda job: schema.resource_type(job.definition["foreach"]),
}
_FILTERS: dict[str, Any] = {
    "name": lambda job: job.name,
    "resourceType": lambda job: schema.resource_type(job.definition["foreach"]),
}


def _glob(pattern: str) -> Callable[[str], bool]:
    """Losant's filter: `*` matches any run of characters, the rest literally, any case.

    Matched part by part, each at its leftmost place after the one before (which finds a
    match whenever there is one), in time linear in the name: one regex of `.*`s would
    backtrack exponentially on a pattern of many `*`."""
    first, *rest = pattern.casefold().split("*")

    def matches(value: str) -> bool:
        text = value.casefold()
        if not rest:
            return text == first
        *middle, last = rest
        if len(text) < len(first) + len(last) or not text.startswith(first):
            return False
        at, end = len(first), len(text) - len(last)
        for part in middle:
            found = text.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return text.endswith(last)

    return matches


@router.get(_JOBS)
def list_resource_jobs(
    project: str,
    sortField: str | None = None,
    sortDirection: str | None = None,
    page: str | None = None,
    perPage: str | None = None,
    filterField: str | None = None,
    filter: str | None = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    sort_field = sortField or "name"
    if sort_field not in _SORTS:
        raise schema.refuse("sortField", f"must be one of {', '.join(_SORTS)}")
    direction = (sortDirection or "asc").lower()
    if direction not in ("asc", "desc"):
        raise schema.refuse("sortDirection", "must be asc or desc")
    number = _whole("page", page, 0, 0, 10**9)
    per_page = _whole("perPage", perPage, PER_PAGE, 1, MOST_PER_PAGE)
    if filterField and filterField not in _FILTERS:
        raise schema.refuse("filterField", f"must be one of {', '.join(_FILTERS)}")
    found, jobs = losant_service.resource_jobs(rt, project)
    filtering = bool(filterField and filter)
    if filtering:
        matcher, value_of = _glob(filter or ""), _FILTERS[filterField or ""]
        jobs = [job for job in jobs if matcher(value_of(job))]
    key = _SORTS[sort_field]
    jobs.sort(key=lambda job: (key(job), object_id(job.id)), reverse=direction == "desc")
    shown = jobs[number * per_page : (number + 1) * per_page]
    out: dict[str, Any] = {
        "items": [schema.render_job(job, wire.ts) for job in shown],
        "count": len(shown),
        "totalCount": len(jobs),
        "perPage": per_page,
        "page": number,
    }
    if filtering:
        out["filter"] = filter
        out["filterField"] = filterField
    out.update(sortField=sort_field, sortDirection=direction, applicationId=object_id(found.id))
    return out


@router.post(_JOBS, status_code=201)
def post_resource_job(
    project: str,
    body: Annotated[Any, Body()] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    post = _checked(schema.ResourceJobPost, body)
    project_id = project_service.get(rt, project).id
    if post.resourceType == "dataTableRow":
        if post.dataTableId is None:
            raise schema.refuse("dataTableId", "is required for resourceType dataTableRow")
        source: dict[str, Any] = {"table": _table(rt, project_id, post.dataTableId)}
    elif post.dataTableId is not None:
        raise schema.refuse("dataTableId", "applies only to resourceType dataTableRow")
    else:
        source = {"items": []}  # the items are given natively: foreach.source
    job = job_service.create(rt, project_id, schema.new_definition(post, source))
    return schema.render_job(job, wire.ts)


@router.get(_JOB)
def get_resource_job(
    project: str,
    job: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> dict[str, Any]:
    return schema.render_job(_resource_job(rt, project, job), wire.ts)


@router.patch(_JOB, status_code=201)
def patch_resource_job(
    project: str,
    job: str,
    body: Annotated[Any, Body()] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    if isinstance(body, dict) and "resourceType" in body:
        raise schema.refuse("resourceType", "cannot be changed once the resource job exists")
    patch = _checked(schema.ResourceJobPatch, body)
    current = _resource_job(rt, project, job)
    foreach = {**current.definition["foreach"], **schema.foreach_changes(patch)}
    if patch.dataTableId is not None:
        if not (foreach.get("source") or {}).get("table"):
            raise schema.refuse("dataTableId", "applies only to resourceType dataTableRow")
        foreach["source"] = {"table": _table(rt, current.project_id, patch.dataTableId)}
    changes: dict[str, Any] = {"foreach": foreach}
    if patch.name is not None:
        changes["name"] = patch.name
    if patch.description is not None:
        changes["description"] = patch.description
    if patch.defaultContext is not None:
        changes["context"] = schema.json_object("defaultContext", patch.defaultContext)
    updated = job_service.patch(rt, current.project_id, current.id, changes)
    return schema.render_job(updated, wire.ts)


@router.delete(_JOB)
def delete_resource_job(
    project: str,
    job: str,
    includeWorkflows: str | None = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:write"),
) -> dict[str, Any]:
    # jobport has no workflows: a resource job's work is its own steps, deleted with it.
    if includeWorkflows not in (None, "", "true", "false", "True", "False", "1", "0"):
        raise schema.refuse("includeWorkflows", "must be true or false")
    found = _resource_job(rt, project, job)
    job_service.delete(rt, found.project_id, found.id)
    return {"success": True}


# --- executions --------------------------------------------------------------------------------


@router.post(_JOB + "/execute")
def execute_resource_job(
    project: str,
    job: str,
    body: Annotated[Any, Body()] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:execute"),
) -> dict[str, Any]:
    options = _checked(schema.ExecutionOptions, {} if body is None else body)
    found = _resource_job(rt, project, job)
    context = (
        schema.json_object("templateContext", options.templateContext)
        if options.templateContext is not None
        else None
    )
    overrides: dict[str, Any] = {}
    if options.queryJson is not None:
        overrides["query"] = schema.query(options.queryJson)
    if options.dataTableId is not None:
        if not (found.definition["foreach"].get("source") or {}).get("table"):
            raise schema.refuse("dataTableId", "applies only to resourceType dataTableRow")
        overrides["source"] = {"table": _table(rt, found.project_id, options.dataTableId)}
    execution, _ = execution_service.start(
        rt,
        found.project_id,
        found.id,
        StartRequest(
            trigger=Trigger.API,
            principal=caller.label,
            context=context,
            foreach=overrides or None,
        ),
    )
    return {"success": True, "executionId": object_id(execution.id)}


@router.post(_JOB + "/cancelExecution")
def cancel_resource_job_execution(
    project: str,
    job: str,
    executionId: str | None = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:cancel"),
) -> dict[str, Any]:
    if not executionId:
        raise schema.refuse("executionId", "is required")
    if not schema.OBJECT_ID.fullmatch(executionId):
        raise schema.refuse("executionId", "must be a 24-hex id")
    found = _resource_job(rt, project, job)
    run = losant_service.run_by_object_id(rt, executionId)
    if run is None or run.execution.job_id != found.id:
        raise NotFound("Execution was not found", code="execution_not_found")
    execution_service.cancel(rt, run.execution.id)
    return {"success": True}


# Losant's execution status for jobport's: a run with failed items while it runs is erroring.
_STATUS = {
    Status.SUCCEEDED: "completed",
    Status.FAILED: "errored",
    Status.TIMED_OUT: "errored",
    Status.CANCELLING: "canceling",
    Status.CANCELLED: "canceled",
}
# Who started a run, as Losant's sourceType: a schedule is what a Losant workflow with a
# timer trigger is; the console is a user.
_SOURCE = {Trigger.API: "apiToken", Trigger.SCHEDULE: "flow", Trigger.CONSOLE: "user"}
_SUMMARY = ("succeeded", "failed", "timedOut", "inProgress", "remaining")
_ACCUMULATOR_CHARS = 256  # Losant's accumulator is a string of at most this many characters


def _status(execution: Execution, summary: dict[str, int]) -> str:
    if execution.status in _STATUS:
        return _STATUS[execution.status]
    return "erroring" if summary["failed"] or summary["timedOut"] else "inProgress"


def render_log(run: losant_service.Run, report_url: str) -> dict[str, Any]:
    """A run as Losant's Resource Job Execution Log."""
    execution = run.execution
    foreach = run.definition.get("foreach") or {}
    iteration = execution.iteration or {}
    summary = {key: int(iteration.get(key) or 0) for key in _SUMMARY}
    oid = object_id(execution.id)
    out: dict[str, Any] = {
        "id": oid,
        "resourceJobExecutionId": oid,
        "applicationId": object_id(execution.project_id),
        "resourceJobId": object_id(execution.job_id),
        "status": _status(execution, summary),
        "queryJson": schema.query_json(foreach),
        "resourceType": schema.resource_type(foreach),
        "sourceType": _SOURCE.get(execution.trigger, "apiToken"),
        # A run not started yet shows when it was asked for.
        "runStartedAt": wire.ts(execution.started_at or execution.created_at),
        "executionReportUrl": report_url,
        "templateContext": json.dumps(execution.context or {}, separators=(",", ":")),
        **schema.iteration_fields(foreach),
        "executionSummary": summary,
    }
    if execution.status.is_final:
        out["runCompletedAt"] = wire.ts(execution.finished_at)
    if execution.status == Status.CANCELLED:
        out["cancelSourceType"] = "apiToken"
    accumulator = iteration.get("accumulator")
    if accumulator is not None:
        text = accumulator if isinstance(accumulator, str) else json.dumps(accumulator)
        out["accumulator"] = text[:_ACCUMULATOR_CHARS]
    return out


@router.get(_JOB + "/logs")
def resource_job_logs(
    request: Request,
    project: str,
    job: str,
    limit: str | None = None,
    since: str | None = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("jobs:read"),
) -> JSONResponse:
    authorization.authorize(rt, caller, "executions:read", project)
    most = _whole("limit", limit, 1, 1, MOST_LOGS)
    after = None
    if since not in (None, ""):
        ms = _whole("since", since, 0, 0, 253_402_300_799_999)  # up to the year 9999
        after = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    found = _resource_job(rt, project, job)
    runs = losant_service.runs(rt, found.project_id, found.id, since=after, limit=most)
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        [render_log(run, f"{base}/api/v1/executions/{run.execution.id}") for run in runs]
    )
