"""v1 roles: application roles, project roles, and their members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import Field

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.domain.access import RESOURCES, SCOPES, Principal
from jobport.domain.jobs import NAME_PATTERN
from jobport.services import access
from jobport.services.runtime import Runtime

app_router = APIRouter(prefix="/api/v1/roles", tags=["roles"])
project_router = APIRouter(prefix="/api/v1/projects/{project}/roles", tags=["roles"])


# The rules below are stated in the document (json_schema_extra) and checked by the service,
# which names them in its own error code (`invalid_role`, `invalid_member`).
_SCOPE_NAMES = ["*", *sorted(f"{r}:*" for r in RESOURCES), *SCOPES]
_NAME = {"pattern": NAME_PATTERN}
_SCOPES = {"items": {"type": "string", "enum": _SCOPE_NAMES}}


class Member(wire.Body):
    type: str = Field(json_schema_extra={"enum": ["apiKey", "user"]})
    id: str = Field(description="an API key's client id, or a username")


class RoleCreate(wire.Body):
    """A role: a name, and the scopes its members get (at its level: the application, or
    one project)."""

    name: str = Field(json_schema_extra=_NAME)
    description: str = ""
    scopes: list[str] = Field(default_factory=list, json_schema_extra=_SCOPES)


class RolePatch(wire.Body):
    """The fields to change; absent or null ones stay as they are."""

    name: str | None = Field(default=None, json_schema_extra=_NAME)
    description: str | None = None
    scopes: list[str] | None = Field(default=None, json_schema_extra=_SCOPES)


_EXAMPLES = {
    "operators": openapi.example(
        "A role that may run and watch jobs",
        {
            "name": "operators",
            "description": "run jobs and watch their runs",
            "scopes": ["jobs:read", "jobs:execute", "executions:read"],
        },
    )
}
_PATCH_EXAMPLES = {
    "describe": openapi.example("Change the description", {"description": "the on-call team"})
}
_MEMBER_EXAMPLES = {"admin": openapi.example("Add user admin", {"type": "user", "id": "admin"})}
_ADDED = {201: {"description": "added"}, 200: {"description": "was a member already"}}
_EXISTS = {409: {"description": "a role of that name exists here, or it is built-in"}}
_BUILTIN = {409: {"description": "a built-in role cannot be changed or deleted"}}


def render(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "scopes": row["scopes"],
        "builtin": row["builtin"],
        "level": _level(row),
        "members": [{"type": m["member_type"], "id": m["member_id"]} for m in row["members"]],
        "createdAt": wire.ts(row["created_at"]),
        "updatedAt": wire.ts(row["updated_at"]),
    }


def _level(row: dict[str, Any]) -> str:
    if row["builtin"]:
        return "builtin"
    return "project" if row["project_id"] else "application"


RoleBody = Annotated[RoleCreate, Body(openapi_examples=_EXAMPLES)]
RolePatchBody = Annotated[RolePatch, Body(openapi_examples=_PATCH_EXAMPLES)]
MemberBody = Annotated[Member, Body(openapi_examples=_MEMBER_EXAMPLES)]


# Application roles -----------------------------------------------------------------------


@app_router.get("")
async def list_roles(
    rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:read")
) -> dict[str, Any]:
    return {"items": [render(r) for r in access.list_roles(rt, None)]}


@app_router.post("", status_code=201, responses=_EXISTS)
async def create_role(
    body: RoleBody, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:write")
) -> dict[str, Any]:
    return render(access.create_role(rt, None, body.model_dump(exclude_unset=True)))


@app_router.get("/{role}")
async def get_role(
    role: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:read")
) -> dict[str, Any]:
    return render(access.get_role(rt, None, role))


@app_router.patch("/{role}", responses=_EXISTS)
async def patch_role(
    role: str,
    body: RolePatchBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> dict[str, Any]:
    return render(access.patch_role(rt, None, role, body.model_dump(exclude_unset=True)))


@app_router.delete("/{role}", status_code=204, responses=_BUILTIN)
async def delete_role(
    role: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:write")
) -> Response:
    access.delete_role(rt, None, role)
    return Response(status_code=204)


@app_router.post("/{role}/members", responses=_ADDED)
async def add_role_member(
    role: str,
    member: MemberBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> JSONResponse:
    row, created = access.add_member(rt, None, role, member.type, member.id)
    return JSONResponse(render(row), status_code=201 if created else 200)


@app_router.delete("/{role}/members/{member_type}/{member_id}", status_code=204)
async def remove_role_member(
    role: str,
    member_type: str,
    member_id: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> Response:
    access.remove_member(rt, None, role, member_type, member_id)
    return Response(status_code=204)


# Project roles ---------------------------------------------------------------------------


@project_router.get("")
async def list_project_roles(
    project: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:read")
) -> dict[str, Any]:
    return {"items": [render(r) for r in access.list_roles(rt, project)]}


@project_router.post("", status_code=201, responses=_EXISTS)
async def create_project_role(
    project: str,
    body: RoleBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> dict[str, Any]:
    return render(access.create_role(rt, project, body.model_dump(exclude_unset=True)))


@project_router.get("/{role}")
async def get_project_role(
    project: str,
    role: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:read"),
) -> dict[str, Any]:
    return render(access.get_role(rt, project, role))


@project_router.patch("/{role}", responses=_EXISTS)
async def patch_project_role(
    project: str,
    role: str,
    body: RolePatchBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return render(access.patch_role(rt, project, role, changes))


@project_router.delete("/{role}", status_code=204, responses=_BUILTIN)
async def delete_project_role(
    project: str,
    role: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> Response:
    access.delete_role(rt, project, role)
    return Response(status_code=204)


@project_router.post("/{role}/members", responses=_ADDED)
async def add_project_role_member(
    project: str,
    role: str,
    member: MemberBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> JSONResponse:
    row, created = access.add_member(rt, project, role, member.type, member.id)
    return JSONResponse(render(row), status_code=201 if created else 200)


@project_router.delete("/{role}/members/{member_type}/{member_id}", status_code=204)
async def remove_project_role_member(
    project: str,
    role: str,
    member_type: str,
    member_id: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> Response:
    access.remove_member(rt, project, role, member_type, member_id)
    return Response(status_code=204)
