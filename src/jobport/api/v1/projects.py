"""v1 projects, and their JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.v1 import wire
from jobport.domain.access import Principal
from jobport.domain.projects import Project
from jobport.services import projects as project_service
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])

# The project the other examples of the document live in.
_CREATE_EXAMPLES = {
    "example": openapi.example(
        "The project of the examples", {"name": "example", "description": "to try things in"}
    )
}
_PATCH_EXAMPLES = {
    "describe": openapi.example("Change the description", {"description": "jobs to try"})
}
_NAME_TAKEN = {409: {"description": "a project of that name exists"}}


def render(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "createdAt": wire.ts(project.created_at),
        "updatedAt": wire.ts(project.updated_at),
    }


@router.get("")
async def list_projects(
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("projects:read", deferred=True),
) -> dict[str, Any]:
    # A listing shows only the projects the caller may read.
    only = caller.project_ids("projects:read")
    page = project_service.list_page(rt, cursor=cursor, limit=limit, only=only)
    return wire.page(page, render)


@router.post("", status_code=201, responses=_NAME_TAKEN)
async def create_project(
    body: Annotated[wire.ProjectCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    response: Response,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("projects:write"),
) -> dict[str, Any]:
    created = project_service.create(rt, body.name, body.description)
    response.headers["Location"] = f"/api/v1/projects/{created.id}"
    return render(created)


@router.get("/{project}")
async def get_project(
    project: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("projects:read"),
) -> dict[str, Any]:
    return render(project_service.get(rt, project))


@router.patch("/{project}", responses=_NAME_TAKEN)
async def patch_project(
    project: str,
    body: Annotated[wire.ProjectPatch, Body(openapi_examples=_PATCH_EXAMPLES)],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("projects:write"),
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") is None:
        changes.pop("name", None)
    if changes.get("description") is None:
        changes.pop("description", None)
    return render(project_service.patch(rt, project, changes))


@router.delete(
    "/{project}",
    status_code=204,
    responses={409: {"description": "executions in the project are queued or running"}},
)
async def delete_project(
    project: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("projects:write"),
) -> Response:
    project_service.delete(rt, project)
    return Response(status_code=204)
