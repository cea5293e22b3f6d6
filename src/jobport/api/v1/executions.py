"""v1 executions: status, list, cancel, logs (by cursor or live), result; their JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from jobport.api.auth import require
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.domain.access import Principal
from jobport.domain.executions import FINAL_STATUSES, Execution, LogLine, Status, drop_schema
from jobport.domain.iteration import Item, ItemStatus
from jobport.errors import Conflict
from jobport.services import executions as execution_service
from jobport.services.access import authorization
from jobport.services.runtime import Runtime

router = APIRouter(tags=["executions"])
# Stated for the reader; the service checks it (`invalid_filter`).
_STATUS = "(" + "|".join(s.value for s in Status) + ")"
_STATUS_LIST = {"items": {"type": "string", "pattern": f"^{_STATUS}?(,{_STATUS}?)*$"}}


def render(execution: Execution, *, with_result: bool = True) -> dict[str, Any]:
    """An execution as v1 shows it; listings leave the result out (`with_result=False`)."""
    error, fired = execution.error, execution.schedule
    return {
        "id": execution.id,
        "jobId": execution.job_id,
        "jobName": execution.job_name,
        "projectId": execution.project_id,
        "status": execution.status,
        "trigger": execution.trigger,
        "parameters": execution.parameters,
        "mode": execution.mode,
        "attempt": execution.attempt,
        "retryOf": execution.retry_of,
        "principal": execution.principal,
        "createdAt": wire.ts(execution.created_at),
        "startedAt": wire.ts(execution.started_at),
        "finishedAt": wire.ts(execution.finished_at),
        "steps": execution.steps,
        "result": execution.result if with_result else None,
        "error": {"code": error.code, "message": error.message} if error else None,
        "logLines": execution.log_lines,
        "schedule": {"name": fired.schedule_name, "fireAt": wire.ts(fired.fire_at)}
        if fired
        else None,
        "context": execution.context,
        "iteration": execution.iteration,
    }


def render_listed(execution: Execution) -> dict[str, Any]:
    """An execution as a listing (or its job) shows it: without the result."""
    return render(execution, with_result=False)


def render_log_line(line: LogLine) -> dict[str, Any]:
    return {
        "seq": line.seq,
        "at": wire.ts(line.at),
        "step": line.step,
        "stream": line.stream,
        "level": line.level,
        "text": line.text,
        "iteration": line.iteration,
    }


@router.get("/api/v1/projects/{project}/executions")
async def list_executions(
    project: str,
    job: str | None = None,
    status: Annotated[
        list[str] | None,
        Query(description="repeat or comma-separate", json_schema_extra=_STATUS_LIST),
    ] = None,
    created_after: Annotated[wire.UtcDateTime | None, Query(alias="createdAfter")] = None,
    created_before: Annotated[wire.UtcDateTime | None, Query(alias="createdBefore")] = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read"),
) -> dict[str, Any]:
    statuses = [s for value in status or [] for s in value.split(",") if s]
    page = execution_service.list_page(
        rt,
        project,
        job_ref=job,
        statuses=statuses,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
    )
    return wire.page(page, render_listed)


@router.get("/api/v1/executions/{execution_id}")
async def get_execution(
    execution_id: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read", deferred=True),
) -> dict[str, Any]:
    return render(_readable(rt, caller, execution_id, "executions:read"))


def _readable(rt: Runtime, caller: Principal, execution_id: str, scope: str) -> Execution:
    """The execution, if the caller holds `scope` in its project (checked before any change)."""
    execution = execution_service.get(rt, execution_id)
    authorization.check(caller, scope, execution.project_id)
    return execution


@router.post(
    "/api/v1/executions/{execution_id}/cancel",
    responses={
        200: {"description": "cancelled (now, or before)"},
        202: {"description": "asked to stop; it stops within the grace period"},
        409: {"description": "it ended already, otherwise than cancelled"},
    },
)
async def cancel_execution(
    execution_id: str,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:cancel", deferred=True),
) -> JSONResponse:
    _readable(rt, caller, execution_id, "executions:cancel")
    execution = execution_service.cancel(rt, execution_id)
    return JSONResponse(
        render(execution), status_code=200 if execution.status in FINAL_STATUSES else 202
    )


@router.get(
    "/api/v1/executions/{execution_id}/result",
    responses={409: {"description": "the execution has not finished (`not_finished`)"}},
)
async def get_result(
    execution_id: str,
    no_schema: Annotated[bool, Query(alias="noSchema")] = False,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read", deferred=True),
) -> JSONResponse:
    execution = _readable(rt, caller, execution_id, "executions:read")
    if execution.status not in FINAL_STATUSES:
        raise Conflict(
            f"execution {execution_id} is {execution.status}; it has no result yet",
            code="not_finished",
            details={"status": execution.status},
        )
    result = drop_schema(execution.result) if no_schema else execution.result
    return JSONResponse(result)


@router.get(
    "/api/v1/executions/{execution_id}/logs",
    responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}},
)
async def get_logs(
    request: Request,
    execution_id: str,
    after: int = Query(0, ge=0, le=2**63 - 1),
    limit: int = Query(1000, ge=1, le=10000),
    follow: bool = False,
    iteration: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="only this foreach item's lines")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read", deferred=True),
) -> Any:
    execution = _readable(rt, caller, execution_id, "executions:read")
    # Retention removed the lines of this ended run: said, not shown as an empty log.
    pruned = execution.logs_pruned_at is not None
    if not follow:
        lines, status = execution_service.logs(
            rt, execution_id, after=after, limit=limit, iteration=iteration
        )
        next_after = lines[-1].seq if lines else after
        return {
            "items": [render_log_line(x) for x in lines],
            "nextAfter": next_after,
            "status": status,
            "finished": status in FINAL_STATUSES and len(lines) < limit,
            "logsPruned": pruned,
        }
    if last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    execution_service.get(rt, execution_id)  # 404 before the stream starts
    return StreamingResponse(
        _follow(request, rt, execution_id, after, iteration, pruned),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(
    request: Request,
    rt: Runtime,
    execution_id: str,
    after: int,
    iteration: int | None,
    pruned: bool = False,
) -> AsyncIterator[str]:
    idle = 0.0
    while True:
        lines, status = await asyncio.to_thread(
            execution_service.logs,
            rt,
            execution_id,
            after=after,
            limit=2000,
            iteration=iteration,
        )
        for line in lines:
            after = line.seq
            yield f"id: {after}\nevent: log\ndata: {json.dumps(render_log_line(line))}\n\n"
        if lines:
            idle = 0.0
            continue
        if status in FINAL_STATUSES:
            end = {"status": status, "logsPruned": True} if pruned else {"status": status}
            yield f"event: end\ndata: {json.dumps(end)}\n\n"
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.2)
        idle += 0.2
        if idle >= 15:
            idle = 0.0
            yield ": keep-alive\n\n"


def render_item(item: Item) -> dict[str, Any]:
    return {
        "index": item.index,
        "item": item.value,
        "status": item.status,
        "attempts": item.attempts,
        "startedAt": wire.ts(item.started_at),
        "finishedAt": wire.ts(item.finished_at),
        "error": item.error,
    }


_ITEM_STATUS = "^(" + "|".join(s.value for s in ItemStatus) + ")$"


@router.get("/api/v1/executions/{execution_id}/items")
async def list_items(
    execution_id: str,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1, description="the index to read after")] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Annotated[str | None, Query(pattern=_ITEM_STATUS)] = None,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = require("executions:read", deferred=True),
) -> dict[str, Any]:
    """A foreach run's items in index order, each with its status, attempts and error;
    `nextAfter` is the cursor for the next page (null at the end)."""
    _readable(rt, caller, execution_id, "executions:read")
    found = await asyncio.to_thread(
        execution_service.items, rt, execution_id, after=after, limit=limit, status=status
    )
    return {
        "items": [render_item(i) for i in found],
        "nextAfter": found[-1].index if len(found) == limit else None,
    }
