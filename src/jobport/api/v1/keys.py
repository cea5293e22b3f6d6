"""v1 API keys: create (secret shown once), list, edit, rotate, delete, firewall helper."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import Field, StrictBool

from jobport.api import openapi
from jobport.api.auth import address_of, require
from jobport.api.v1 import wire
from jobport.domain.access import ApiKey, FirewallRule, Principal, RoleHeld, key_string
from jobport.services.access import authorization
from jobport.services.access import keys as key_service
from jobport.services.access import roles as role_service
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

# The service reads the rules itself (`invalid_firewall_rule` names the problem); the document
# shows what it reads them with.
_RULES = {"items": openapi.component(FirewallRule)}


class RoleGrant(wire.Body):
    """A role to give a new key (or user) in the same call: at the application level, or in
    one project."""

    role: str
    project: str | None = Field(default=None, description="a project's name or id; null: all")


class KeyCreate(wire.Body):
    description: str = Field(default="", max_length=2000)
    expires_at: wire.UtcDateTime | None = Field(
        default=None, description="null: never; omitted: in 90 days (settings)"
    )
    firewall_rules: list[dict[str, Any]] = Field(default_factory=list, json_schema_extra=_RULES)
    roles: list[RoleGrant] = Field(
        default_factory=list, description="roles to give the key in the same call"
    )


class KeyPatch(wire.Body):
    description: str | None = Field(default=None, max_length=2000)
    expires_at: wire.UtcDateTime | None = None
    firewall_rules: list[dict[str, Any]] | None = Field(default=None, json_schema_extra=_RULES)
    # Strict: JSON has true and false; 0, 1 or "yes" are a mistake, not a boolean.
    enabled: StrictBool | None = None
    force: StrictBool = Field(default=False, description="allow an edit that locks out the caller")


class KeyRotate(wire.Body):
    old_secret_valid_until: wire.UtcDateTime | None = Field(
        default=None, description="until when the old secret keeps working; default in 24 h"
    )


class CurrentAddress(wire.Body):
    name: str | None = None


def checked_grants(
    rt: Runtime, caller: Principal, grants: list[RoleGrant]
) -> list[tuple[str, str | None]]:
    """The grants as (role, project), once the caller may give each (`roles:write` at its
    level, as for adding a member) and each role exists there; before anything is made, so
    that a refused or missing role makes nothing."""
    for grant in grants:
        authorization.authorize(rt, caller, "roles:write", grant.project)
        role_service.get_role(rt, grant.project, grant.role)
    return [(grant.role, grant.project) for grant in grants]


def render_roles(roles: tuple[RoleHeld, ...]) -> list[dict[str, Any]]:
    """The roles a key or user holds, as `[{role, project}]` (the project's name or null)."""
    return [{"role": r.role, "project": r.project} for r in roles]


def render(key: ApiKey, rt: Runtime) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    expires = key.expires_at
    soon = now + dt.timedelta(days=rt.settings.key_expiry_warning_days)
    previous = key.previous_valid_until
    return {
        "clientId": key.client_id,
        "description": key.description,
        "enabled": key.enabled,
        "expiresAt": wire.ts(expires),
        "expired": expires is not None and expires <= now,
        "expiresSoon": expires is not None and now < expires <= soon,
        "firewallRules": list(key.firewall_rules),
        "roles": render_roles(key.roles),
        "createdBy": key.created_by,
        "createdAt": wire.ts(key.created_at),
        "updatedAt": wire.ts(key.updated_at),
        "rotatedAt": wire.ts(key.rotated_at),
        "previousSecretValidUntil": wire.ts(previous) if previous and previous > now else None,
        "lastUsedAt": wire.ts(key.last_used_at),
        "lastUsedIp": key.last_used_ip,
    }


def with_secret(key: ApiKey, secret: str, rt: Runtime) -> dict[str, Any]:
    return {
        **render(key, rt),
        "clientSecret": secret,
        "key": key_string(key.client_id, secret),
    }


@router.get("")
async def list_keys(
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("keys:read"),
) -> dict[str, Any]:
    page = key_service.list_keys(rt, cursor=cursor, limit=limit)
    return wire.page(page, lambda r: render(r, rt))


_CREATE_EXAMPLES = {
    "ci": openapi.example(
        "A key for a CI runner, from one network only",
        {
            "description": "CI runner",
            "expiresAt": "2030-01-01T00:00:00Z",
            "firewallRules": [{"name": "office", "startIp": "192.0.2.0", "endIp": "192.0.2.255"}],
        },
    ),
    "operator": openapi.example(
        "A key that may run the example project's jobs, with its role",
        {"description": "scheduler", "roles": [{"role": "Operator", "project": "example"}]},
    ),
}


_PATCH_EXAMPLES = {
    "disable": openapi.example("Turn the key off for now", {"enabled": False}),
    "describe": openapi.example("Change the description", {"description": "CI runner (old)"}),
}
_ROTATE_EXAMPLES = {
    "overlap": openapi.example(
        "A new secret; the old one works until the deploys have the new one",
        {"oldSecretValidUntil": "2030-01-01T12:00:00Z"},
    )
}
_ADDRESS_EXAMPLES = {"laptop": openapi.example("Name the rule", {"name": "my laptop"})}


@router.post(
    "",
    status_code=201,
    responses={
        404: {"description": "a role (or its project) given in `roles` does not exist"},
        409: {"description": "the new client id was issued before (retry)"},
    },
)
async def create_key(
    body: Annotated[KeyCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    response: Response,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("keys:write"),
) -> dict[str, Any]:
    """A key, and the roles given (which need `roles:write` where they apply), in one
    transaction: a role that is missing makes no key."""
    fields = body.model_dump(exclude_unset=True)
    kwargs: dict[str, Any] = {}
    if "expires_at" in fields:
        kwargs["expires_at"] = body.expires_at
    roles = checked_grants(rt, caller, body.roles)
    key, secret = key_service.create_key(
        rt,
        description=body.description,
        firewall_rules=body.firewall_rules,
        created_by=caller.label,
        roles=roles,
        **kwargs,
    )
    response.headers["Location"] = f"/api/v1/keys/{key.client_id}"
    return with_secret(key, secret, rt)


@router.get("/{client_id}")
async def get_key(
    client_id: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("keys:read")
) -> dict[str, Any]:
    return render(key_service.get_key(rt, client_id), rt)


@router.patch(
    "/{client_id}",
    responses={409: {"description": "the edit would lock out the caller; `force` does it"}},
)
async def patch_key(
    client_id: str,
    body: Annotated[KeyPatch, Body(openapi_examples=_PATCH_EXAMPLES)],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("keys:write"),
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    force = changes.pop("force", False)
    return render(key_service.patch_key(rt, client_id, changes, caller=caller, force=force), rt)


@router.delete("/{client_id}", status_code=204)
async def delete_key(
    client_id: str, rt: Runtime = Depends(wire.runtime), caller: Principal = require("keys:write")
) -> Response:
    key_service.delete_key(rt, client_id)
    return Response(status_code=204)


@router.post("/{client_id}/rotate")
async def rotate_key(
    client_id: str,
    body: Annotated[KeyRotate | None, Body(openapi_examples=_ROTATE_EXAMPLES)] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("keys:write"),
) -> dict[str, Any]:
    until = body.old_secret_valid_until if body else None
    key, secret = key_service.rotate_key(rt, client_id, old_valid_until=until)
    return with_secret(key, secret, rt)


@router.post("/{client_id}/firewall-rules/current-address")
async def add_current_address(
    client_id: str,
    request: Request,
    body: Annotated[CurrentAddress | None, Body(openapi_examples=_ADDRESS_EXAMPLES)] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("keys:write"),
) -> dict[str, Any]:
    """Add a rule for the address this request comes from."""
    key = key_service.add_current_address(
        rt, client_id, address_of(request), body.name if body else None
    )
    return render(key, rt)
