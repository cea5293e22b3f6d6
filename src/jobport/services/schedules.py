"""Schedule use-cases: define, read, preview, trigger and backfill a job's schedules."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection

from jobport.domain.clock import utcnow
from jobport.domain.executions import Execution
from jobport.domain.ids import new_id
from jobport.domain.jobs import NAME_PATTERN, JobSpec
from jobport.domain.pages import Page
from jobport.domain.schedules import Fire, Schedule, ScheduleFire, ScheduleSpec, Timetable
from jobport.domain.schedules.fires import next_fire_at
from jobport.errors import Conflict, Invalid, error_details, invalid
from jobport.services import firing
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import projects as project_store
from jobport.store import schedules as schedule_store

_NAME_RE = re.compile(NAME_PATTERN)
_DAWN = dt.datetime.min.replace(tzinfo=dt.UTC)  # before every fire: a search from here finds all
_FIELDS = ("crons", "runAt", "timeZone", "startDate", "endDate", "dstPolicy", "catchupWindow")

# -- parsing ----------------------------------------------------------------------------


def _field_of(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if loc:
        return loc
    # A check across fields (crons with runAt, end before start) has no location of its own:
    # name the field its message is about.
    message = str(err.get("msg", ""))
    for name in _FIELDS:
        if name in message:
            return name
    return "body"


def parse_schedule(data: dict[str, Any]) -> ScheduleSpec:
    """Turn a schedule body into a ScheduleSpec, or raise Invalid naming every problem."""
    try:
        spec = ScheduleSpec.model_validate(data)
        spec.timetable()  # zone and crons are checked here if the model left them to it
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False), field_of=_field_of)
        raise invalid(details, what="invalid schedule", code="invalid_schedule") from None
    except ValueError as exc:
        reason = str(exc)
        where = _field_of({"loc": (), "msg": reason})
        raise Invalid(
            f"invalid schedule: {where}: {reason}",
            code="invalid_schedule",
            details=[{"field": where, "reason": reason}],
        ) from None
    return spec


def _spec_of(definition: dict[str, Any]) -> ScheduleSpec:
    return ScheduleSpec.model_validate(definition)


# -- use-cases --------------------------------------------------------------------------------


def _job(conn: Connection, project_ref: str, job_ref: str) -> dict[str, Any]:
    project = project_store.get(conn, project_ref)
    return job_store.get(conn, project["id"], job_ref)


def _check_name(name: str, data: dict[str, Any]) -> None:
    if not _NAME_RE.match(name):
        raise Invalid(
            f"schedule name {name!r} must be 1-200 letters, digits, spaces, '_', '.', '-'",
            code="invalid_schedule",
            details=[{"field": "name", "reason": "invalid name"}],
        )
    given = data.get("name")
    if given is not None and given != name:
        raise Invalid(
            f"the body names schedule {given!r} but the path names {name!r}",
            code="invalid_schedule",
            details=[{"field": "name", "reason": "must match the name in the path"}],
        )


def _check_parameters(spec: ScheduleSpec, job: dict[str, Any]) -> None:
    job_spec = JobSpec.model_validate(job["spec"])
    problems = job_spec.parameter_problems(spec.parameters)
    if problems:
        first = problems[0]
        if job_spec.parameters_schema is None:
            declared = ", ".join(sorted(job_spec.parameters)) or "none"
            unknown = [p["field"].removeprefix("parameters.") for p in problems]
            message = (
                f"unknown parameter(s) {unknown} for job {job['name']!r} (declared: {declared})"
            )
        else:
            message = f"{first['field']}: {first['reason']}"
        raise Invalid(message, code="invalid_schedule", details=problems)


def _refuse_a_past_run_at(
    conn: Connection,
    spec: ScheduleSpec,
    timetable: Timetable,
    current: dict[str, Any] | None,
    now: dt.datetime,
) -> None:
    """Refuse a runAt in the past: it would be stored and never fire, without a word.

    An update of a schedule that fired at that time is let through: it simply ends. So is
    a runAt that startDate, endDate or a skipped DST gap leave no instant at all (never
    due, it is not past; left as it was).
    """
    times = [f.utc for f in timetable.fires_after(_DAWN)]
    if not times or times[-1] > now:
        return
    if current is not None and set(times) & schedule_store.fire_times(
        conn, current["id"], times[0], times[-1]
    ):
        return
    there = now.astimezone(timetable.zone).strftime("%Y-%m-%dT%H:%M")
    raise Invalid(
        f"runAt {spec.run_at} ({spec.time_zone}) is in the past; it is {there} there now, "
        "and a one-time schedule fires only at a time to come",
        code="invalid_schedule",
        details=[{"field": "runAt", "reason": "in the past"}],
    )


def put(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    data: dict[str, Any],
    *,
    now: dt.datetime | None = None,
) -> tuple[Schedule, bool]:
    """Add the schedule, or update it keeping its id and fire history. Returns (it, created)."""
    if not isinstance(data, dict):
        raise Invalid("the schedule must be a JSON object", code="invalid_schedule")
    _check_name(name, data)
    spec = parse_schedule({**data, "name": name})
    timetable = spec.timetable()
    now = now or utcnow()
    grace = rt.settings.scheduler_misfire_grace_seconds
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        _check_parameters(spec, job)
        current = schedule_store.find(conn, job["id"], name, lock=True)
        last = current["last_fire_at"] if current else None
        due = current["next_fire_at"] if current else None
        upcoming = next_fire_at(
            timetable,
            last,
            now,
            grace,
            due_since=due if due is not None and due <= now else None,
        )
        if upcoming is None and spec.run_at is not None:
            _refuse_a_past_run_at(conn, spec, timetable, current, now)
        values = {
            "spec": spec.wire(),
            "enabled": spec.enabled,
            "next_fire_at": upcoming if spec.enabled else None,
            "updated_at": now,
        }
        if current is None:
            row = {
                "id": new_id(),
                "project_id": job["project_id"],
                "job_id": job["id"],
                "name": name,
                "last_fire_at": None,
                "created_at": now,
                **values,
            }
            schedule_store.insert_schedule(conn, row)
        else:
            row = {**current, **values}
            schedule_store.update_fields(conn, current["id"], values)
    firing.changed()
    return Schedule.from_row(row), current is None


def add_or_update(
    rt: Runtime, project_ref: str, job_ref: str, data: dict[str, Any]
) -> tuple[Schedule, bool]:
    """`put`, for a body that names its schedule (Loome's "Add or Update Schedule")."""
    if not isinstance(data, dict):
        raise Invalid("the schedule must be a JSON object", code="invalid_schedule")
    name = data.get("name")
    if not isinstance(name, str):
        raise Invalid(
            "the body must name the schedule to add or update ('name', a string)",
            code="invalid_schedule",
            details=[{"field": "name", "reason": "required, a string"}],
        )
    return put(rt, project_ref, job_ref, name, data)


def list_for_job(rt: Runtime, project_ref: str, job_ref: str) -> list[Schedule]:
    """The job's schedules, by name."""
    with rt.db.read() as conn:
        job = _job(conn, project_ref, job_ref)
        rows = schedule_store.for_job(conn, job["id"])
    return [Schedule.from_row(r) for r in rows]


def for_job(conn: Connection, job_id: str) -> list[Schedule]:
    """A job's schedules, for the job's own view (inside the caller's transaction)."""
    return [Schedule.from_row(r) for r in schedule_store.for_job(conn, job_id)]


def get(rt: Runtime, project_ref: str, job_ref: str, name: str) -> Schedule:
    """The job's schedule called `name`."""
    with rt.db.read() as conn:
        job = _job(conn, project_ref, job_ref)
        return Schedule.from_row(schedule_store.get(conn, job["id"], name))


def delete(rt: Runtime, project_ref: str, job_ref: str, name: str) -> None:
    """Remove the schedule and its fire history."""
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule_store.remove(conn, schedule_store.get(conn, job["id"], name)["id"])
    firing.changed()


def preview(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    *,
    count: int = 10,
    start: dt.datetime | None = None,
) -> list[Fire]:
    """The next `count` fire times after `start` (default now), as the scheduler fires them."""
    if not 1 <= count <= 1000:
        raise Invalid(
            "count must be 1 to 1000",
            code="invalid_request",
            details=[{"field": "count", "reason": "must be 1 to 1000"}],
        )
    timetable = _spec_of(get(rt, project_ref, job_ref, name).definition).timetable()
    return list(itertools.islice(timetable.fires_after(start or utcnow()), count))


def fires(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """The schedule's fire history, newest first: a Page of ScheduleFires."""
    with rt.db.read() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule = schedule_store.get(conn, job["id"], name)
        page = schedule_store.fires_page(conn, schedule["id"], cursor=cursor, limit=limit)
    return Page([ScheduleFire.from_row(r) for r in page.items], page.next_cursor)


def trigger(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    *,
    principal: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[ScheduleFire, Execution]:
    """Run the schedule's job now, recorded as one of its fires. Returns (fire, execution)."""
    now = now or utcnow()
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule = schedule_store.get(conn, job["id"], name, lock=True)
        spec = _spec_of(schedule["spec"])
        fire = Fire(utc=now, local=now.astimezone(ZoneInfo(spec.timetable().iana)), dst=None)
        batch = firing.Batch.load(conn, now, [schedule])
        row = firing.record_fire(
            batch,
            schedule,
            spec,
            fire,
            kind="trigger",
            overlap=False,
            strict=True,
            principal=principal,
        )
        assert row is not None
        try:
            batch.flush()
        except schedule_store.DuplicateFire:
            raise Conflict(
                "a fire of this schedule is recorded at this very instant; retry",
                code="fire_exists",
            ) from None
        execution = Execution.from_row(execution_store.get(conn, row["execution_id"]))
    batch.announce(rt)
    return ScheduleFire.from_row(row), execution


def backfill(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    principal: str | None = None,
    now: dt.datetime | None = None,
) -> list[ScheduleFire]:
    """One fire (a run, or what the overlap policy makes of it) per fire time in
    [start, end] that has none recorded yet. Returns the fires recorded."""
    now = now or utcnow()
    cap = rt.settings.schedule_backfill_max_fires
    if end <= start:
        raise Invalid(
            "'to' must be after 'from'",
            code="invalid_range",
            details=[{"field": "to", "reason": "must be after from"}],
        )
    if end > now:
        raise Invalid(
            "'to' is in the future; the scheduler fires those times itself",
            code="invalid_range",
            details=[{"field": "to", "reason": "must not be in the future"}],
        )
    timetable = _spec_of(get(rt, project_ref, job_ref, name).definition).timetable()
    times = list(
        itertools.islice(
            itertools.takewhile(
                lambda f: f.utc <= end, timetable.fires_after(start, inclusive=True)
            ),
            cap + 1,
        )
    )
    if len(times) > cap:
        raise Invalid(
            f"the range holds more than {cap} fire times; backfill a shorter range",
            code="range_too_large",
            details=[{"field": "to", "reason": f"more than {cap} fires in range"}],
        )
    recorded: list[ScheduleFire] = []
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule = schedule_store.get(conn, job["id"], name, lock=True)
        spec = _spec_of(schedule["spec"])
        batch = firing.Batch.load(conn, now, [schedule], since=start)
        for fire in times:
            row = firing.record_fire(
                batch, schedule, spec, fire, kind="backfill", principal=principal
            )
            if row is not None:
                recorded.append(ScheduleFire.from_row(row))
        try:
            batch.flush()
        except schedule_store.DuplicateFire:
            raise Conflict(
                "the scheduler fired some of these times meanwhile; retry the backfill",
                code="fire_exists",
            ) from None
    batch.announce(rt)
    return recorded
