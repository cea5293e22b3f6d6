"""v1 users: the console users, created with their roles, and their passwords set."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import Field

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.v1 import wire
from jobport.api.v1.keys import RoleGrant, checked_grants, render_roles
from jobport.domain.access import Principal, User
from jobport.services.access import users as user_service
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/users", tags=["users"])

# Stated for the document (and the fuzzer), checked by the service with its own codes
# (`invalid_username`, `weak_password`); tests/api/test_users.py holds them equal.
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,199}$"
_USERNAME = {"pattern": USERNAME_PATTERN}
_PASSWORD = {"minLength": user_service.MIN_PASSWORD_LENGTH}


class UserCreate(wire.Body):
    username: str = Field(json_schema_extra=_USERNAME)
    password: str = Field(json_schema_extra=_PASSWORD)
    roles: list[RoleGrant] = Field(
        default_factory=list, description="roles to give the user in the same call"
    )


class PasswordSet(wire.Body):
    password: str = Field(json_schema_extra=_PASSWORD)


_CREATE_EXAMPLES = {
    "operator": openapi.example(
        "A user who may run the example project's jobs",
        {
            "username": "ann",
            "password": "a long passphrase",
            "roles": [{"role": "Operator", "project": "example"}],
        },
    )
}
_PASSWORD_EXAMPLES = {"new": openapi.example("A new password", {"password": "a new passphrase"})}


def render(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "enabled": user.enabled,
        "roles": render_roles(user.roles),
        "createdAt": wire.ts(user.created_at),
        "updatedAt": wire.ts(user.updated_at),
        "lastLoginAt": wire.ts(user.last_login_at),
    }


@router.get("")
async def list_users(
    rt: Runtime = Depends(wire.runtime), caller: Principal = require("users:read")
) -> dict[str, Any]:
    return {"items": [render(u) for u in user_service.list_users(rt)]}


@router.post(
    "",
    status_code=201,
    responses={
        404: {"description": "a role (or its project) given in `roles` does not exist"},
        409: {"description": "a user of that name exists"},
    },
)
async def create_user(
    body: Annotated[UserCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("users:write"),
) -> dict[str, Any]:
    """A user with a password and, in the same transaction, roles (which need `roles:write`
    where they apply, as adding a member does)."""
    roles = checked_grants(rt, caller, body.roles)
    # argon2 costs tens of milliseconds on purpose: off the event loop.
    await asyncio.to_thread(user_service.create_user, rt, body.username, body.password, roles)
    return next(render(u) for u in user_service.list_users(rt) if u.username == body.username)


@router.put("/{username}/password", status_code=204)
async def set_password(
    username: str,
    body: Annotated[PasswordSet, Body(openapi_examples=_PASSWORD_EXAMPLES)],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("users:write"),
) -> Response:
    await asyncio.to_thread(user_service.set_password, rt, username, body.password)
    return Response(status_code=204)
