"""Runs: the runs list (across the projects the viewer may read, or one), a run's page (its
status and steps refreshed by htmx until it ends, a foreach run's items, the result as a
table, the live log), the log as a download, and Cancel with a confirmation.

The live log is the API's own `GET /api/v1/executions/{id}/logs?follow=true` (SSE), which
the session cookie authenticates; console.js appends its lines to the page. A run whose log
lines retention removed (`logs_pruned_at`) says so, with the settings that decide it, in
place of the log and as the first line of the download.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from jobport.api.v1.executions import render as render_execution
from jobport.api.v1.executions import render_item, render_listed
from jobport.console.web import PREFIX, Viewer, page, redirect, viewer
from jobport.domain.executions import FINAL_STATUSES, Execution, LogLine, Status
from jobport.domain.pages import Page
from jobport.errors import Conflict, Invalid, NotFound
from jobport.services import executions as execution_service
from jobport.services import jobs as job_service
from jobport.services import projects as project_service
from jobport.services.access import authorization

router = APIRouter()

PAGE_SIZE = 50
ITEMS_SHOWN = 100
RECORDS_SHOWN = 1000
_LOG_PAGE = 5000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
Iteration = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


def _readable(who: Viewer, execution_id: str, scope: str) -> Execution:
    """The run, if the viewer holds `scope` in its project (as the API's `_readable`)."""
    execution = execution_service.get(who.rt, execution_id)
    authorization.check(who.principal, scope, execution.project_id)
    return execution


def _project_names(who: Viewer, only: set[str] | None) -> dict[str, str]:
    """Id → name of the projects in `only` (None: every project)."""
    names: dict[str, str] = {}
    cursor = None
    while True:
        found = project_service.list_page(who.rt, cursor=cursor, limit=500, only=only)
        names.update((p.id, p.name) for p in found.items)
        cursor = found.next_cursor
        if cursor is None:
            return names


# --- the runs list across projects -------------------------------------------------------
# Each project's runs are a keyset listing, newest first. A page of the merged list takes
# the newest `limit` of every project's next page; its cursor is every project's own
# cursor after what was shown (absent: that project has no more).


def _encode(state: dict[str, str]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, str]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        state = None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in state.items()
    ):
        raise Invalid("cursor is not one this server issued", code="invalid_cursor")
    return state


def _merged_page(
    who: Viewer,
    project_ids: list[str],
    cursor: str | None,
    job: str | None,
    statuses: list[str],
    limit: int = PAGE_SIZE,
) -> Page:
    state = _decode(cursor) if cursor else dict.fromkeys(project_ids, "")
    state = {p: c for p, c in state.items() if p in project_ids}

    def listing(project_id: str, after: str, limit: int) -> Page | None:
        try:
            return execution_service.list_page(
                who.rt,
                project_id,
                job_ref=job,
                statuses=statuses,
                cursor=after or None,
                limit=limit,
            )
        except NotFound:  # the job is not one of this project's
            return None

    pages = {p: listing(p, after, limit) for p, after in state.items()}
    merged = sorted(
        ((e, p) for p, found in pages.items() if found for e in found.items),
        key=lambda pair: (pair[0].created_at, pair[0].id),
        reverse=True,
    )[:limit]
    taken: dict[str, int] = {}
    for _, p in merged:
        taken[p] = taken.get(p, 0) + 1
    after_this: dict[str, str] = {}
    for p, found in pages.items():
        if found is None:
            continue
        count = taken.get(p, 0)
        if count == len(found.items):
            next_cursor = found.next_cursor
        elif count == 0:
            next_cursor = state[p] or ""
        else:  # part of its page was shown: its own cursor after the last one shown
            shorter = listing(p, state[p], count)
            next_cursor = shorter.next_cursor if shorter else None
        if next_cursor is not None:
            after_this[p] = next_cursor
    return Page([e for e, _ in merged], _encode(after_this) if after_this else None)


@router.get(PREFIX + "/runs")
async def runs_list(
    request: Request,
    project: str = "",
    job: str = "",
    status: str = "",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
    who: Viewer = Depends(viewer),
) -> Response:
    readable = who.principal.project_ids("executions:read")
    names = await asyncio.to_thread(_project_names, who, readable)
    if project:
        who.authorize("executions:read", project)  # as the API's per-project listing
        chosen = project_service.get(who.rt, project)
        names.setdefault(chosen.id, chosen.name)
        project_ids = [chosen.id]
    else:
        project_ids = sorted(names)
    statuses = [status] if status else []
    found = await asyncio.to_thread(
        _merged_page, who, project_ids, cursor or None, job.strip() or None, statuses, limit
    )
    return page(
        request,
        "runs/list.html",
        who,
        runs=[render_listed(e) for e in found.items],
        names=names,
        projects=sorted(names.items(), key=lambda pair: pair[1].lower()),
        project=project,
        job=job,
        status_filter=status,
        statuses=[s.value for s in Status],
        next_cursor=found.next_cursor,
        limit=limit,
    )


# --- one run ---------------------------------------------------------------------------


def _records(result: Any) -> dict[str, Any] | None:
    """A result with `records` as a table: its columns (from the schema, else the records'
    keys) and rows; None when the result is not records."""
    if not isinstance(result, dict) or not isinstance(result.get("records"), list):
        return None
    records = result["records"]
    if not all(isinstance(r, dict) for r in records):
        return None
    schema = result.get("schema") if isinstance(result.get("schema"), list) else []
    columns = [
        {"name": str(c.get("name")), "type": c.get("type")}
        for c in schema
        if isinstance(c, dict) and c.get("name") is not None
    ]
    known = {c["name"] for c in columns}
    for record in records:
        for key in record:
            if key not in known:
                known.add(key)
                columns.append({"name": key, "type": None})
    for column in columns:
        kind = column["type"]
        if isinstance(kind, dict):  # a vendor-shaped type: {name, typeStr, ...}
            kind = kind.get("typeStr") or kind.get("name")
        column["type"] = "" if kind is None else str(kind)
    rows = [[_cell(r.get(c["name"])) for c in columns] for r in records[:RECORDS_SHOWN]]
    extra = {k: v for k, v in result.items() if k not in ("records", "schema")}
    return {"columns": columns, "rows": rows, "total": len(records), "extra": extra}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _state(
    who: Viewer, execution: Execution, iteration: int | None, items_after: int
) -> dict[str, Any]:
    """What the run's page shows of its state (the part htmx refreshes)."""
    shown = render_execution(execution)
    items: list[dict[str, Any]] = []
    if execution.iteration is not None:
        found = execution_service.items(
            who.rt, execution.id, after=items_after, limit=ITEMS_SHOWN + 1
        )
        items = [render_item(i) for i in found]
    final = execution.status in FINAL_STATUSES
    return {
        "run": shown,
        "final": final,
        "table": _records(execution.result) if final else None,
        "items": items[:ITEMS_SHOWN],
        "more_items": items[ITEMS_SHOWN - 1]["index"] if len(items) > ITEMS_SHOWN else None,
        "items_after": items_after,
        "iteration": iteration,
        "can_cancel": not final and who.can("executions:cancel", execution.project_id),
    }


def _days(days: int) -> str:
    return "as long as their run" if days == 0 else f"{days} day{'' if days == 1 else 's'}"


def _log_policy(who: Viewer, execution: Execution) -> str:
    """How long the run's job keeps log lines now, and the setting that says so."""
    server = who.rt.settings.log_retention_days
    own = None
    try:
        job = job_service.get(who.rt, execution.project_id, execution.job_id)
    except NotFound:  # the job was deleted since
        job = None
    if job is not None:
        retention = job.definition.get("retention")
        if isinstance(retention, dict) and isinstance(retention.get("logDays"), int):
            own = retention["logDays"]
    if own is not None:
        return (
            f"The job {execution.job_name} keeps log lines {_days(own)} after a run ends (its "
            f"retention.logDays; the server's JOBPORT_LOG_RETENTION_DAYS is {server})."
        )
    return (
        f"Log lines are kept {_days(server)} after a run ends (the server's "
        "JOBPORT_LOG_RETENTION_DAYS; a job's retention.logDays overrides it)."
    )


def pruned_note(who: Viewer, execution: Execution) -> str | None:
    """What the run's page and download say in place of log lines retention removed; None
    while they are kept."""
    if execution.logs_pruned_at is None:
        return None
    had = execution.log_lines
    on = execution.logs_pruned_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"The log lines of this run were removed by the retention policy on {on} "
        f"({had} line{'' if had == 1 else 's'}). " + _log_policy(who, execution)
    )


@router.get(PREFIX + "/runs/{execution_id}")
async def run_detail(
    request: Request,
    execution_id: str,
    iteration: Iteration = None,
    items_after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
    who: Viewer = Depends(viewer),
) -> Response:
    execution = await asyncio.to_thread(_readable, who, execution_id, "executions:read")
    state = await asyncio.to_thread(_state, who, execution, iteration, items_after)
    project = project_service.get(who.rt, execution.project_id)
    pruned = await asyncio.to_thread(pruned_note, who, execution)
    return page(request, "runs/detail.html", who, project=project, pruned=pruned, **state)


@router.get(PREFIX + "/runs/{execution_id}/state")
async def run_state(
    request: Request,
    execution_id: str,
    iteration: Iteration = None,
    items_after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
    who: Viewer = Depends(viewer),
) -> Response:
    """The part of the run's page that changes while it runs (polled by htmx)."""
    execution = await asyncio.to_thread(_readable, who, execution_id, "executions:read")
    state = await asyncio.to_thread(_state, who, execution, iteration, items_after)
    return page(request, "runs/_state.html", who, refresh=True, **state)


def _log_text(line: LogLine) -> str:
    at = line.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    where = f" [{line.step}]" if line.step else ""
    item = f" (item {line.iteration})" if line.iteration is not None else ""
    return f"{at}{where}{item} {line.stream}: {line.text}\n"


async def _log_lines(
    who: Viewer, execution_id: str, iteration: int | None, first: str | None = None
) -> AsyncIterator[str]:
    if first is not None:
        yield first + "\n"
    after = 0
    while True:
        lines, _ = await asyncio.to_thread(
            execution_service.logs,
            who.rt,
            execution_id,
            after=after,
            limit=_LOG_PAGE,
            iteration=iteration,
        )
        if lines:
            yield "".join(_log_text(line) for line in lines)
            after = lines[-1].seq
        if len(lines) < _LOG_PAGE:
            return


@router.get(PREFIX + "/runs/{execution_id}/log.txt")
async def run_log(
    execution_id: str, iteration: Iteration = None, who: Viewer = Depends(viewer)
) -> Response:
    """The run's whole log (or one item's) as text, to download."""
    execution = await asyncio.to_thread(_readable, who, execution_id, "executions:read")
    name = _SAFE_NAME.sub("_", f"{execution.job_name}-{execution.id}")
    if iteration is not None:
        name += f"-item-{iteration}"
    pruned = await asyncio.to_thread(pruned_note, who, execution)
    return StreamingResponse(
        _log_lines(who, execution.id, iteration, pruned),
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.log"',
            "Cache-Control": "no-store",
        },
    )


@router.get(PREFIX + "/runs/{execution_id}/cancel")
async def cancel_confirm(
    request: Request, execution_id: str, who: Viewer = Depends(viewer)
) -> Response:
    """Are you sure? (the confirmation a form without JavaScript gets)"""
    execution = await asyncio.to_thread(_readable, who, execution_id, "executions:cancel")
    ended = execution.status in FINAL_STATUSES
    error = f"this run already ended {execution.status.value}" if ended else ""
    return page(request, "runs/cancel.html", who, run=render_execution(execution), error=error)


@router.post(PREFIX + "/runs/{execution_id}/cancel")
async def cancel_run(
    request: Request, execution_id: str, who: Viewer = Depends(viewer)
) -> Response:
    execution = await asyncio.to_thread(_readable, who, execution_id, "executions:cancel")
    try:
        await asyncio.to_thread(execution_service.cancel, who.rt, execution.id)
    except Conflict as exc:  # it ended meanwhile
        shown = render_execution(execution_service.get(who.rt, execution.id))
        return page(request, "runs/cancel.html", who, status=409, run=shown, error=exc.message)
    return redirect(f"{PREFIX}/runs/{execution.id}", request)
