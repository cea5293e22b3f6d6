"""v1 roles: application roles, project roles, and their members."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import Field

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.domain.access import RESOURCES, SCOPES, Principal, Role
from jobport.domain.jobs import NAME_PATTERN
from jobport.services.access import roles as role_service
from jobport.services.runtime import Runtime

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


def render(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "scopes": list(role.scopes),
        "builtin": role.builtin,
        "level": role.level,
        "members": [{"type": m.type, "id": m.id} for m in role.members],
        "createdAt": wire.ts(role.created_at),
        "updatedAt": wire.ts(role.updated_at),
    }


RoleBody = Annotated[RoleCreate, Body(openapi_examples=_EXAMPLES)]
RolePatchBody = Annotated[RolePatch, Body(openapi_examples=_PATCH_EXAMPLES)]
MemberBody = Annotated[Member, Body(openapi_examples=_MEMBER_EXAMPLES)]
Endpoint = Callable[..., Awaitable[Any]]


def _at_level(in_project: bool) -> Callable[[Endpoint], Endpoint]:
    """Fits an endpoint written for both levels to one. Its first parameter, `project`, is the
    `{project}` path parameter in a project; at the application level it is not in the path,
    so FastAPI does not see it and the endpoint gets None."""

    def fit(endpoint: Endpoint) -> Endpoint:
        signature = inspect.signature(endpoint)
        project, *rest = signature.parameters.values()
        if in_project:
            parameters = [project.replace(annotation=str), *rest]
            endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
            return endpoint

        @functools.wraps(endpoint)
        async def at_application_level(**kwargs: Any) -> Any:
            return await endpoint(None, **kwargs)

        at_application_level.__signature__ = signature.replace(parameters=rest)  # type: ignore[attr-defined]
        return at_application_level

    return fit


def _role_routes(prefix: str, *, in_project: bool) -> APIRouter:
    """The role routes of one level: the application's roles, or one project's.

    Each route keeps the name it has always had (`create_role`, `create_project_role`): the
    name is the audit action and the OpenAPI operation id.
    """
    router = APIRouter(prefix=prefix, tags=["roles"])
    level = "project_" if in_project else ""
    at_level = _at_level(in_project)

    @router.get("", name=f"list_{level}roles")
    @at_level
    async def list_roles(
        project: str | None,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:read"),
    ) -> dict[str, Any]:
        return {"items": [render(r) for r in role_service.list_roles(rt, project)]}

    @router.post("", name=f"create_{level}role", status_code=201, responses=_EXISTS)
    @at_level
    async def create_role(
        project: str | None,
        body: RoleBody,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:write"),
    ) -> dict[str, Any]:
        return render(role_service.create_role(rt, project, body.model_dump(exclude_unset=True)))

    @router.get("/{role}", name=f"get_{level}role")
    @at_level
    async def get_role(
        project: str | None,
        role: str,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:read"),
    ) -> dict[str, Any]:
        return render(role_service.get_role(rt, project, role))

    @router.patch("/{role}", name=f"patch_{level}role", responses=_EXISTS)
    @at_level
    async def patch_role(
        project: str | None,
        role: str,
        body: RolePatchBody,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:write"),
    ) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        return render(role_service.patch_role(rt, project, role, changes))

    @router.delete("/{role}", name=f"delete_{level}role", status_code=204, responses=_BUILTIN)
    @at_level
    async def delete_role(
        project: str | None,
        role: str,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:write"),
    ) -> Response:
        role_service.delete_role(rt, project, role)
        return Response(status_code=204)

    @router.post("/{role}/members", name=f"add_{level}role_member", responses=_ADDED)
    @at_level
    async def add_role_member(
        project: str | None,
        role: str,
        member: MemberBody,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:write"),
    ) -> JSONResponse:
        held, created = role_service.add_member(rt, project, role, member.type, member.id)
        return JSONResponse(render(held), status_code=201 if created else 200)

    @router.delete(
        "/{role}/members/{member_type}/{member_id}",
        name=f"remove_{level}role_member",
        status_code=204,
    )
    @at_level
    async def remove_role_member(
        project: str | None,
        role: str,
        member_type: str,
        member_id: str,
        rt: Runtime = Depends(wire.runtime),
        caller: Principal = require("roles:write"),
    ) -> Response:
        role_service.remove_member(rt, project, role, member_type, member_id)
        return Response(status_code=204)

    return router


app_router = _role_routes("/api/v1/roles", in_project=False)
project_router = _role_routes("/api/v1/projects/{project}/roles", in_project=True)
