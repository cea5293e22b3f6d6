"""v1 job routes by the job's id alone, `/api/v1/jobs/{job_id}/...`, for scripts that know a
job's id but not its project (Loome's: a base URL, a job id and a key).

Each is a twin of a route under `/api/v1/projects/{project}/jobs/{job}` (api/v1/jobs.py,
schedules.py), made from it: the same endpoint, documented the same, called with the job's
project once the job is found and the caller holds the route's scope there. A route added
under a job gets its twin with nothing written here.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute

from jobport.api.auth import require
from jobport.api.v1 import jobs, schedules
from jobport.errors import NotFound
from jobport.services import jobs as job_service
from jobport.services.access import authorization

Endpoint = Callable[..., Awaitable[Any]]

IN_PROJECT = "/api/v1/projects/{project}/jobs/{job}"
BY_ID = "/api/v1/jobs/{job_id}"
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _scope_of(parameter: inspect.Parameter) -> str | None:
    """The scope a `require(...)` default declares, if this parameter has one."""
    return getattr(getattr(parameter.default, "dependency", None), "jobport_scope", None)


def by_job_id(endpoint: Endpoint) -> Endpoint:
    """`endpoint` (with `project`, `job` and a `require(scope)` caller) taking `job_id`
    instead: the scope is required somewhere before the job is looked up (`deferred`), and in
    the job's project after; an unknown id is 404 `job_not_found`, and so is a job in a
    project where the caller may not even read jobs (its id is no way to learn that it
    exists, or which project holds it)."""
    signature = inspect.signature(endpoint)
    caller = next(p for p in signature.parameters.values() if _scope_of(p))
    scope = str(_scope_of(caller))
    parameters = [
        inspect.Parameter("job_id", _KEYWORD, annotation=str),
        inspect.Parameter("jobport_request", _KEYWORD, annotation=Request),
    ]
    for parameter in signature.parameters.values():
        if parameter.name in {"project", "job"}:
            continue
        if parameter is caller:
            parameter = parameter.replace(default=require(scope, deferred=True))
        parameters.append(parameter.replace(kind=_KEYWORD))

    @functools.wraps(endpoint)
    async def twin(*, job_id: str, jobport_request: Request, **kwargs: Any) -> Any:
        rt = jobport_request.app.state.runtime
        principal = kwargs[caller.name]
        try:
            project_id = await asyncio.to_thread(job_service.project_of, rt, job_id)
        except NotFound:
            raise _unknown(job_id) from None
        if not principal.allows(scope, project_id) and not principal.allows(
            "jobs:read", project_id
        ):
            raise _unknown(job_id)
        authorization.check(principal, scope, project_id)
        jobport_request.state.project_id = project_id  # the audit entry's project
        return await endpoint(project=project_id, job=job_id, **kwargs)

    twin.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return twin


def _unknown(job_id: str) -> NotFound:
    return NotFound(
        f"no job with id {job_id!r} (a job's `id`; by name: /api/v1/projects/{{project}}"
        "/jobs/{name})",
        code="job_not_found",
    )


def twins(routes: Iterable[Any]) -> APIRouter:
    """A router with the by-id twin of every route of `routes` under a job. Each keeps its
    route's name with `_by_job_id` (the audit action and the OpenAPI operation id)."""
    router = APIRouter()
    for route in routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(IN_PROJECT):
            continue
        router.add_api_route(
            BY_ID + route.path.removeprefix(IN_PROJECT),
            by_job_id(route.endpoint),
            methods=sorted(route.methods),
            status_code=route.status_code,
            responses=route.responses,
            name=f"{route.name}_by_job_id",
            tags=list(route.tags),
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
        )
    return router


router = twins([*jobs.router.routes, *schedules.router.routes])
