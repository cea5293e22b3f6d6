"""A job's schedules in the console: list, add, edit, delete, the next fires (live while the
form is typed) and the fire history, on the services and rights of `api/v1/schedules.py`."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import FormData
from starlette.responses import Response
from tzlocal.windows_tz import win_tz

from jobport.api.v1.schedules import fire_time, schedule, schedule_fire
from jobport.console.web import PREFIX, Viewer, env, form_errors, page, redirect, viewer
from jobport.domain.clock import utcnow
from jobport.domain.schedules import ScheduleSpec, resolve_time_zone
from jobport.domain.values import first_problem
from jobport.errors import Invalid, JobportError, NotFound
from jobport.services import schedules as schedule_service

router = APIRouter()

BASE = PREFIX + "/projects/{project}/jobs/{job}/schedules"
PREVIEW_COUNT = 5
NEXT_COUNT = 10
FIRES_PER_PAGE = 20
# The fields of the form, as the preview shows a problem next to each (the ones a timetable
# depends on; parameters are checked against the job only when saving).
TIMETABLE_FIELDS = ("crons", "timeZone", "startDate", "endDate", "runAt", "dstGap", "dstRepeat")
FORM_FIELDS = (
    "name",
    *TIMETABLE_FIELDS,
    "enabled",
    "misfirePolicy",
    "catchupWindow",
    "overlapPolicy",
    "mode",
    "parameters",
)
_DST = {"gap": "dstGap", "repeat": "dstRepeat"}
CHOICES = {
    "dstGap": ("shift", "skip"),
    "dstRepeat": ("first", "last", "both"),
    "misfirePolicy": ("skip", "runOnce", "runAll"),
    "overlapPolicy": ("allow", "skip", "bufferOne", "cancelPrevious"),
    "mode": ("full", "delta"),
}


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every zone the API accepts by its own name: IANA names, then Windows names."""
    return (*sorted(available_timezones()), *sorted(win_tz))


def url_of(project: str, job: str, name: str | None = None, *rest: str) -> str:
    """A console URL under the job's schedules (each name quoted as a path segment)."""
    parts = [PREFIX, "projects", quote(project, safe=""), "jobs", quote(job, safe=""), "schedules"]
    if name is not None:
        parts.append(quote(name, safe=""))
    return "/".join([*parts, *rest])


# -- the form and the spec ---------------------------------------------------------------------


def values_of(definition: dict[str, Any] | None) -> dict[str, Any]:
    """A stored definition (or the defaults, for a new schedule) as the form's values."""
    spec = ScheduleSpec.model_validate(definition or {"crons": ["0 0 * * *"]}).wire()
    if definition is None:
        spec["crons"] = []
    window = spec["catchupWindow"]
    params = spec.get("parameters") or {}
    return {
        "name": spec.get("name") or "",
        "crons": "\n".join(spec.get("crons") or []),
        "runAt": spec.get("runAt") or "",
        "timeZone": spec.get("timeZone") or "",
        "startDate": spec.get("startDate") or "",
        "endDate": spec.get("endDate") or "",
        "enabled": bool(spec.get("enabled")),
        "dstGap": spec["dstPolicy"]["gap"],
        "dstRepeat": spec["dstPolicy"]["repeat"],
        "misfirePolicy": spec["misfirePolicy"],
        "catchupWindow": str(int(window)) if float(window).is_integer() else str(window),
        "overlapPolicy": spec["overlapPolicy"],
        "mode": spec["mode"],
        "parameters": json.dumps(params, indent=2, ensure_ascii=False) if params else "",
    }


def _text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


def _number(text: str) -> Any:
    """catchupWindow as a number when it is one; otherwise as typed, for the API to refuse."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def body_of(form: FormData) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The form as the API's schedule body, the values to show again, and the problems the
    form itself finds (parameters that are not JSON)."""
    values: dict[str, Any] = {f: _text(form, f) for f in FORM_FIELDS if f != "enabled"}
    raw_params = form.get("parameters")
    values["parameters"] = raw_params if isinstance(raw_params, str) else ""
    values["enabled"] = form.get("enabled") is not None
    problems: dict[str, str] = {}
    body: dict[str, Any] = {"enabled": values["enabled"]}
    # A choice left out (a form posted by hand) is the spec's default, as in the API.
    dst = {key: values[field] for key, field in _DST.items() if values[field]}
    if dst:
        body["dstPolicy"] = dst
    for field in ("misfirePolicy", "overlapPolicy", "mode"):
        if values[field]:
            body[field] = values[field]
    crons = [line.strip() for line in values["crons"].splitlines() if line.strip()]
    if crons:
        body["crons"] = crons
    for field in ("runAt", "timeZone", "startDate", "endDate"):
        if values[field]:
            body[field] = values[field]
    if values["catchupWindow"]:
        body["catchupWindow"] = _number(values["catchupWindow"])
    if values["parameters"].strip():
        try:
            body["parameters"] = json.loads(values["parameters"], parse_constant=_not_json)
        except (ValueError, RecursionError) as exc:
            problems["parameters"] = f"not valid JSON: {exc}"
    problem = first_problem(body)
    if problem is not None:
        _, where, reason = problem
        problems.setdefault(_form_field(where), reason)
    return body, values, problems


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _form_field(api_field: str) -> str:
    """The form's field for a field the API names (`crons.0`, `dstPolicy.gap`...)."""
    head = api_field.split(".", 1)[0].split("[", 1)[0]
    if head == "dstPolicy":
        return "dstRepeat" if api_field.endswith("repeat") else "dstGap"
    return head if head in FORM_FIELDS else "_"


def errors_of(exc: JobportError) -> dict[str, str]:
    """The API's words for each field, placed at the form's fields: `crons.1` is the
    second line of the crons box."""
    found: dict[str, str] = {}
    for field, reason in form_errors(exc).items():
        if field == "_":
            continue
        where = _form_field(field)
        head, _, rest = field.partition(".")
        if head == "crons" and rest.isdigit():
            reason = f"line {int(rest) + 1}: {reason}"
        elif rest and head != "dstPolicy":
            reason = f"{rest}: {reason}"  # parameters.limit: which parameter
        found[where] = f"{found[where]}; {reason}" if where in found else reason
    found["_"] = exc.message
    return found


# -- live preview ---------------------------------------------------------------------------


def preview_of(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, str]]:
    """The next fires of a schedule not saved yet, as the preview service computes those of a
    saved one: the spec parsed by the service's own parser, its timetable from now."""
    try:
        spec = schedule_service.parse_schedule(body)
    except Invalid as exc:
        return [], "", errors_of(exc)
    timetable = spec.timetable()
    fires = itertools.islice(timetable.fires_after(utcnow()), PREVIEW_COUNT)
    return [fire_time(f) for f in fires], timetable.iana, {}


def _wall(at: dt.datetime) -> str:
    """A wall time with its zone's abbreviation (if it has one) and its offset."""
    offset = at.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:5]}"
    name = at.tzname() or ""
    label = f"{name} ({offset})" if name and name[0] not in "+-" else offset
    return f"{at:%Y-%m-%d %H:%M:%S} {label}"


def local_wall(value: str | None, iana: str | None = None) -> str:
    """A fire's local time (ISO with its offset) as a wall time, named in its zone."""
    if not value:
        return ""
    at = dt.datetime.fromisoformat(value)
    return _wall(at.astimezone(ZoneInfo(iana)) if iana else at)


def in_zone(value: Any, iana: str | None) -> str:
    """A UTC time (ISO or datetime) as the wall time in a zone."""
    if not value or not iana:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return _wall(value.astimezone(ZoneInfo(iana)))


env.filters["local_wall"] = local_wall
env.filters["in_zone"] = in_zone


# -- the job page's part --------------------------------------------------------------------


def _iana(zone: Any) -> str | None:
    try:
        return resolve_time_zone(str(zone or "UTC"))
    except ValueError:
        return None


def job_schedules(who: Viewer | None, project: Any, job: Any) -> list[dict[str, Any]] | None:
    """A job's schedules in short for its page: those the job was read with (the record's or
    the API's JSON), else read here if the viewer may; None if the viewer may not."""
    found = job.get("schedules") if isinstance(job, dict) else getattr(job, "schedules", None)
    if found is None:
        if who is None:
            return None
        project_id = job.get("projectId") if isinstance(job, dict) else job.project_id
        if not who.can("schedules:read", project_id):
            return None
        job_id = job.get("id") if isinstance(job, dict) else job.id
        found = schedule_service.list_for_job(who.rt, project_id, job_id)
    shown = []
    for it in found:
        summary = schedule(it) if not isinstance(it, dict) else dict(it)
        summary.setdefault("timeZoneIana", _iana(summary.get("timeZone")))
        shown.append(summary)
    return shown


env.globals["job_schedules"] = job_schedules
env.globals["schedules_url"] = url_of


# -- pages ----------------------------------------------------------------------------------


def _form_page(
    request: Request,
    who: Viewer,
    project: str,
    job: str,
    *,
    name: str | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    preview_body, _, _ = body_of(_as_form(values))
    fires, iana, preview_errors = preview_of(preview_body)
    return page(
        request,
        "schedules/form.html",
        who,
        status=status,
        project=project,
        job=job,
        name=name,
        values=values,
        errors=errors,
        choices=CHOICES,
        zones=zone_names(),
        fires=fires,
        iana=iana,
        preview_errors=preview_errors,
        preview_url=url_of(project, job, "-", "preview"),
        action=url_of(project, job, name, "edit") if name else url_of(project, job, "-", "new"),
        back=url_of(project, job, name) if name else url_of(project, job),
    )


def _as_form(values: dict[str, Any]) -> FormData:
    items = [(k, v) for k, v in values.items() if k != "enabled" and isinstance(v, str)]
    if values.get("enabled"):
        items.append(("enabled", "on"))
    return FormData(items)


@router.get(BASE)
async def list_page(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    project_id = who.authorize("schedules:read", project)
    found = schedule_service.list_for_job(who.rt, project, job)
    return page(
        request,
        "schedules/list.html",
        who,
        project=project,
        job=job,
        schedules=[schedule(s) for s in found],
        can_write=who.can("schedules:write", project_id),
    )


@router.get(BASE + "/-/new")
async def new_form(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("schedules:write", project)
    return _form_page(request, who, project, job, name=None, values=values_of(None), errors={})


@router.post(BASE + "/-/new")
async def create(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("schedules:write", project)
    body, values, problems = body_of(await request.form())
    name = values["name"]
    if not problems and name:
        try:
            schedule_service.get(who.rt, project, job, name)
            problems["name"] = f"this job has a schedule named {name!r} already: edit that one"
        except NotFound as exc:
            if exc.code != "schedule_not_found":
                raise
    if problems:
        problems.setdefault("_", "the schedule was not saved: see the fields marked")
        return _form_page(
            request, who, project, job, name=None, values=values, errors=problems, status=422
        )
    try:
        it, _ = await asyncio.to_thread(schedule_service.put, who.rt, project, job, name, body)
    except Invalid as exc:
        return _form_page(
            request, who, project, job, name=None, values=values, errors=errors_of(exc), status=422
        )
    return redirect(url_of(project, job, it.name), request)


@router.post(BASE + "/-/preview")
async def preview(
    request: Request, project: str, job: str, who: Viewer = Depends(viewer)
) -> Response:
    """The next fires of the form as typed (an htmx fragment), before it is saved."""
    who.authorize("schedules:read", project)
    body, _, _ = body_of(await request.form())
    fires, iana, errors = preview_of(body)
    return page(
        request,
        "schedules/_preview.html",
        who,
        fires=fires,
        iana=iana,
        preview_errors=errors,
        oob=True,
    )


@router.get(BASE + "/{name}")
async def detail(
    request: Request,
    project: str,
    job: str,
    name: str,
    cursor: str | None = Query(None, max_length=500),
    who: Viewer = Depends(viewer),
) -> Response:
    project_id = who.authorize("schedules:read", project)
    it = schedule_service.get(who.rt, project, job, name)
    upcoming = schedule_service.preview(who.rt, project, job, name, count=NEXT_COUNT)
    history = schedule_service.fires(
        who.rt, project, job, name, cursor=cursor, limit=FIRES_PER_PAGE
    )
    return page(
        request,
        "schedules/detail.html",
        who,
        project=project,
        job=job,
        it=schedule(it),
        fires=[fire_time(f) for f in upcoming],
        history=[schedule_fire(f) for f in history.items],
        next_cursor=history.next_cursor,
        first_page=cursor is None,
        can_write=who.can("schedules:write", project_id),
    )


@router.get(BASE + "/{name}/edit")
async def edit_form(
    request: Request, project: str, job: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("schedules:write", project)
    it = schedule_service.get(who.rt, project, job, name)
    values = values_of(it.definition)
    return _form_page(request, who, project, job, name=it.name, values=values, errors={})


@router.post(BASE + "/{name}/edit")
async def save(
    request: Request, project: str, job: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("schedules:write", project)
    schedule_service.get(who.rt, project, job, name)  # an edit never makes a new schedule
    body, values, problems = body_of(await request.form())
    values["name"] = name
    if problems:
        problems.setdefault("_", "the schedule was not saved: see the fields marked")
        return _form_page(
            request, who, project, job, name=name, values=values, errors=problems, status=422
        )
    try:
        await asyncio.to_thread(schedule_service.put, who.rt, project, job, name, body)
    except Invalid as exc:
        return _form_page(
            request, who, project, job, name=name, values=values, errors=errors_of(exc), status=422
        )
    return redirect(url_of(project, job, name), request)


@router.get(BASE + "/{name}/delete")
async def confirm_delete(
    request: Request, project: str, job: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("schedules:write", project)
    it = schedule_service.get(who.rt, project, job, name)
    return page(
        request,
        "schedules/delete.html",
        who,
        project=project,
        job=job,
        it=schedule(it),
        action=url_of(project, job, name, "delete"),
        back=url_of(project, job, name),
    )


@router.post(BASE + "/{name}/delete")
async def delete(
    request: Request, project: str, job: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.authorize("schedules:write", project)
    await asyncio.to_thread(schedule_service.delete, who.rt, project, job, name)
    return redirect(url_of(project, job), request)
