"""v1 connections of a project: define, list, read, change, delete and test them; their JSON,
which never holds a secret (the URL's password and the headers' values are `***`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.v1 import wire
from jobport.domain.access import Principal
from jobport.domain.connections import MASK, Connection, ConnectionSpec
from jobport.services import connections as connection_service
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/projects/{project}/connections", tags=["connections"])

_EXAMPLE_NAME = "warehouse"


ConnectionPatch = wire.patch_model(
    "ConnectionPatch",
    ConnectionSpec,
    "Fields of the connection to replace (`headers` replaces the whole set); the "
    f"others keep their values. `{MASK}` as the URL's password, or as a header's value, keeps "
    "the stored one.",
)

_CREATE_EXAMPLES = {
    "database": openapi.example(
        "A PostgreSQL database (the password is stored encrypted, and shown as ***)",
        {
            "name": _EXAMPLE_NAME,
            "url": "postgresql://reporting:s3cret@db.example.com:5432/warehouse",
            "description": "the reporting warehouse",
        },
    ),
    "service": openapi.example(
        "An HTTP service, with a header sent on every request (its value stored encrypted)",
        {
            "name": "crm",
            "url": "https://crm.example.com/api/",
            "headers": {"Authorization": "Bearer t0ken"},
        },
    ),
}
_PATCH_EXAMPLES = {
    "move": openapi.example(
        "Move it to another host, keeping the stored password",
        {"url": f"postgresql://reporting:{MASK}@db2.example.com:5432/warehouse"},
    ),
    "describe": openapi.example("Change the description", {"description": "reporting, v2"}),
}


def render(connection: Connection) -> dict[str, Any]:
    """A connection as v1 shows it: the URL masked, the headers by name only."""
    return {
        "id": connection.id,
        "projectId": connection.project_id,
        "name": connection.name,
        "description": connection.description,
        "kind": connection.kind,
        "url": connection.url,
        "headers": dict.fromkeys(connection.header_names, MASK),
        "createdAt": wire.ts(connection.created_at),
        "updatedAt": wire.ts(connection.updated_at),
    }


def render_test(result: connection_service.ConnectionTest) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "kind": result.kind,
        "elapsedMs": result.elapsed_ms,
        "message": result.message,
    }


@router.get("")
async def list_connections(
    project: str,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("connections:read"),
) -> dict[str, Any]:
    return wire.page(connection_service.list_page(rt, project, cursor=cursor, limit=limit), render)


@router.post(
    "", status_code=201, responses={409: {"description": "a connection of that name exists"}}
)
# The service reads the body itself, so a mistake is `invalid_connection` with one
# {field, reason} per problem (and never a secret); the document still shows ConnectionSpec.
@openapi.body(ConnectionSpec, _CREATE_EXAMPLES)
async def create_connection(
    project: str,
    body: Annotated[dict[str, Any], Body()],
    response: Response,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("connections:write"),
) -> dict[str, Any]:
    connection = connection_service.create(rt, project, body)
    response.headers["Location"] = f"/api/v1/projects/{project}/connections/{connection.id}"
    return render(connection)


@router.get("/{connection}")
async def get_connection(
    project: str,
    connection: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("connections:read"),
) -> dict[str, Any]:
    return render(connection_service.get(rt, project, connection))


@router.patch("/{connection}", responses={409: {"description": "a connection of that name exists"}})
@openapi.body(ConnectionPatch, _PATCH_EXAMPLES)
async def patch_connection(
    project: str,
    connection: str,
    body: Annotated[dict[str, Any], Body()],
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("connections:write"),
) -> dict[str, Any]:
    return render(connection_service.patch(rt, project, connection, body))


@router.delete("/{connection}", status_code=204)
async def delete_connection(
    project: str,
    connection: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("connections:write"),
) -> Response:
    connection_service.delete(rt, project, connection)
    return Response(status_code=204)


@router.post("/{connection}/test")
async def test_connection(
    project: str,
    connection: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("connections:write"),
) -> dict[str, Any]:
    """Reach the connection once: a database connects and answers `SELECT 1`, an HTTP
    service answers a GET of its base URL below 500. `ok: false` says why not; either way
    the answer is 200 (the test ran)."""
    result = await asyncio.to_thread(connection_service.test, rt, project, connection)
    return render_test(result)
