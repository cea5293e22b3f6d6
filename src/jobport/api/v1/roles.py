"""v1 roles: application roles, project roles, and their members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.responses import JSONResponse

from jobport.api.auth import require
from jobport.api.v1 import wire
from jobport.domain.access import Principal
from jobport.services import access
from jobport.services.runtime import Runtime

app_router = APIRouter(prefix="/api/v1/roles", tags=["roles"])
project_router = APIRouter(prefix="/api/v1/projects/{project}/roles", tags=["roles"])


class Member(wire.Body):
    type: str
    id: str


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


RoleBody = Annotated[dict[str, Any], Body(description='{"name", "description", "scopes": [...]}')]


# Application roles -----------------------------------------------------------------------


@app_router.get("")
async def list_roles(
    rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:read")
) -> dict[str, Any]:
    return {"items": [render(r) for r in access.list_roles(rt, None)]}


@app_router.post("", status_code=201)
async def create_role(
    body: RoleBody, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:write")
) -> dict[str, Any]:
    return render(access.create_role(rt, None, body))


@app_router.get("/{role}")
async def get_role(
    role: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:read")
) -> dict[str, Any]:
    return render(access.get_role(rt, None, role))


@app_router.patch("/{role}")
async def patch_role(
    role: str,
    body: RoleBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> dict[str, Any]:
    return render(access.patch_role(rt, None, role, body))


@app_router.delete("/{role}", status_code=204)
async def delete_role(
    role: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("roles:write")
) -> Response:
    access.delete_role(rt, None, role)
    return Response(status_code=204)


@app_router.post("/{role}/members")
async def add_role_member(
    role: str,
    member: Member,
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


@project_router.post("", status_code=201)
async def create_project_role(
    project: str,
    body: RoleBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> dict[str, Any]:
    return render(access.create_role(rt, project, body))


@project_router.get("/{role}")
async def get_project_role(
    project: str,
    role: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:read"),
) -> dict[str, Any]:
    return render(access.get_role(rt, project, role))


@project_router.patch("/{role}")
async def patch_project_role(
    project: str,
    role: str,
    body: RoleBody,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> dict[str, Any]:
    return render(access.patch_role(rt, project, role, body))


@project_router.delete("/{role}", status_code=204)
async def delete_project_role(
    project: str,
    role: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("roles:write"),
) -> Response:
    access.delete_role(rt, project, role)
    return Response(status_code=204)


@project_router.post("/{role}/members")
async def add_project_role_member(
    project: str,
    role: str,
    member: Member,
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
