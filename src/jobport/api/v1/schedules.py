"""v1 schedules of a job: define (by name in the path, or in the body as Loome's "Add or
Update Schedule" does), list, preview, fire history, run now, backfill; their JSON."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import Field

from jobport.api import openapi
from jobport.api.auth import require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.api.v1.executions import render as render_execution
from jobport.domain.jobs import NAME_PATTERN
from jobport.domain.schedules import Fire, Schedule, ScheduleFire, ScheduleSpec
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/projects/{project}/jobs/{job}/schedules", tags=["schedules"])

_EXAMPLE = {
    "timeZone": "Australia/Sydney",
    "crons": ["30 2 * * *"],
    "parameters": {},
    "misfirePolicy": "runOnce",
    "overlapPolicy": "skip",
}
# Loome's documentation, verbatim: `timezone` in lower case, a Windows zone name.
LOOME_EXAMPLE = {
    "name": "My Schedule",
    "timezone": "AUS Eastern Standard Time",
    "startDate": "2023-09-04",
    "endDate": None,
    "enabled": True,
    "crons": ["0 10 * * *"],
}
_ADD_OR_UPDATE_EXAMPLES = {
    "loome": openapi.example("Loome's Add or Update Schedule body, as documented", LOOME_EXAMPLE)
}
_PUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "updated: same id, fire history kept"},
    201: {"description": "created"},
    409: {"description": "another request made the schedule meanwhile; retry"},
    422: {"description": "invalid schedule; `details` names each field and why"},
}


class NamedSchedule(ScheduleSpec):
    """A schedule that names itself: the body of Add or Update."""

    name: str = Field(json_schema_extra={"pattern": NAME_PATTERN})  # type: ignore[assignment]


def schedule(it: Schedule) -> dict[str, Any]:
    """A schedule: its definition as given, and where it stands."""
    return {
        "id": it.id,
        "jobId": it.job_id,
        **it.definition,
        "timeZoneIana": it.time_zone_iana,
        "state": it.state,
        "nextFireAt": wire.ts(it.next_fire_at),
        "lastFireAt": wire.ts(it.last_fire_at),
        "createdAt": wire.ts(it.created_at),
        "updatedAt": wire.ts(it.updated_at),
    }


def schedule_summary(it: Schedule) -> dict[str, Any]:
    """A schedule as its job lists it (the job renderer imports this)."""
    return {
        "id": it.id,
        "name": it.name,
        "state": it.state,
        "timeZone": it.definition.get("timeZone"),
        "crons": it.definition.get("crons"),
        "runAt": it.definition.get("runAt"),
        "nextFireAt": wire.ts(it.next_fire_at),
        "lastFireAt": wire.ts(it.last_fire_at),
    }


def fire_time(fire: Fire) -> dict[str, Any]:
    """A fire time of a preview: UTC, local wall time with its offset, DST note."""
    return {"utc": wire.ts(fire.utc), "local": fire.local.isoformat(), "dst": fire.dst}


def schedule_fire(fire: ScheduleFire) -> dict[str, Any]:
    """A recorded fire: started (with its execution), buffered, skipped or missed, and why."""
    return {
        "id": fire.id,
        "fireAt": wire.ts(fire.fire_at),
        "local": fire.local,
        "dst": fire.dst,
        "kind": fire.kind,
        "outcome": fire.outcome,
        "reason": fire.reason,
        "executionId": fire.execution_id,
        "recordedAt": wire.ts(fire.recorded_at),
    }


@router.get("")
async def list_schedules(
    project: str,
    job: str,
    caller: Any = require("schedules:read"),
    rt: Runtime = Depends(wire.runtime),
) -> dict[str, Any]:
    schedules = schedule_service.list_for_job(rt, project, job)
    return {"items": [schedule(s) for s in schedules]}


_FIRE_EXISTS = {409: {"description": "a fire at this very time is recorded already; retry"}}


@router.post("", responses=_PUT_RESPONSES)
# As PUT, with the name in the body (Loome's Postman request posts it so).
@openapi.body(NamedSchedule, _ADD_OR_UPDATE_EXAMPLES)
async def add_or_update_schedule(
    project: str,
    job: str,
    body: Annotated[dict[str, Any], Body()],
    caller: Any = require("schedules:write"),
    rt: Runtime = Depends(wire.runtime),
) -> JSONResponse:
    it, created = await asyncio.to_thread(schedule_service.add_or_update, rt, project, job, body)
    if not created:
        return JSONResponse(schedule(it))
    where = f"/api/v1/projects/{it.project_id}/jobs/{it.job_id}/schedules"
    location = f"{where}/{quote(it.name, safe='')}"
    return JSONResponse(schedule(it), status_code=201, headers={"Location": location})


@router.put("/{name}", responses=_PUT_RESPONSES)
# The service reads the body itself, to name each problem (`invalid_schedule`); the document
# still shows the model it reads it with.
@openapi.body(ScheduleSpec, {"nightly": openapi.example("Every night at 2:30 in Sydney", _EXAMPLE)})
async def put_schedule(
    project: str,
    job: str,
    name: str,
    body: Annotated[dict[str, Any], Body()],
    caller: Any = require("schedules:write"),
    rt: Runtime = Depends(wire.runtime),
) -> JSONResponse:
    it, created = await asyncio.to_thread(schedule_service.put, rt, project, job, name, body)
    return JSONResponse(schedule(it), status_code=201 if created else 200)


@router.get("/{name}")
async def get_schedule(
    project: str,
    job: str,
    name: str,
    caller: Any = require("schedules:read"),
    rt: Runtime = Depends(wire.runtime),
) -> dict[str, Any]:
    return schedule(schedule_service.get(rt, project, job, name))


@router.delete("/{name}", status_code=204)
async def delete_schedule(
    project: str,
    job: str,
    name: str,
    caller: Any = require("schedules:write"),
    rt: Runtime = Depends(wire.runtime),
) -> Response:
    await asyncio.to_thread(schedule_service.delete, rt, project, job, name)
    return Response(status_code=204)


@router.get("/{name}/preview")
async def preview_schedule(
    project: str,
    job: str,
    name: str,
    count: int = Query(10, ge=1, le=1000),
    start: Annotated[
        wire.UtcDateTime | None,
        Query(alias="from", description="date-time (UTC if no offset); default now"),
    ] = None,
    caller: Any = require("schedules:read"),
    rt: Runtime = Depends(wire.runtime),
) -> dict[str, Any]:
    fires = schedule_service.preview(rt, project, job, name, count=count, start=start)
    return {"fires": [fire_time(f) for f in fires]}


@router.get("/{name}/fires")
async def list_fires(
    project: str,
    job: str,
    name: str,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    caller: Any = require("schedules:read"),
    rt: Runtime = Depends(wire.runtime),
) -> dict[str, Any]:
    page = schedule_service.fires(rt, project, job, name, cursor=cursor, limit=limit)
    return wire.page(page, schedule_fire)


@router.post(
    "/{name}/trigger",
    status_code=201,
    responses={
        409: {
            "description": "a fire at this very time is recorded already, or the job "
            "forbids concurrent runs and one is running"
        }
    },
)
async def trigger_schedule(
    project: str,
    job: str,
    name: str,
    caller: Any = require("schedules:write"),
    rt: Runtime = Depends(wire.runtime),
) -> dict[str, Any]:
    fire, execution = await asyncio.to_thread(
        schedule_service.trigger, rt, project, job, name, principal=caller.label
    )
    return {"fire": schedule_fire(fire), "execution": render_execution(execution)}


class BackfillRequest(wire.Body):
    from_: wire.UtcDateTime = Field(alias="from")
    to: wire.UtcDateTime


_BACKFILL_EXAMPLES = {
    "a day": openapi.example(
        "The fires of one day in the past",
        {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
    )
}


@router.post("/{name}/backfill", status_code=201, responses=_FIRE_EXISTS)
async def backfill_schedule(
    project: str,
    job: str,
    name: str,
    body: Annotated[BackfillRequest, Body(openapi_examples=_BACKFILL_EXAMPLES)],
    caller: Any = require("schedules:write"),
    rt: Runtime = Depends(wire.runtime),
) -> dict[str, Any]:
    fires = await asyncio.to_thread(
        schedule_service.backfill,
        rt,
        project,
        job,
        name,
        body.from_,
        body.to,
        principal=caller.label,
    )
    return {"fires": [schedule_fire(f) for f in fires]}
