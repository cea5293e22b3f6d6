"""Schedule use-cases: define, read, preview, trigger and backfill a job's schedules."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection

from jobport.domain.clock import utcnow
from jobport.domain.executions import Status, Trigger, queued_execution
from jobport.domain.ids import new_id
from jobport.domain.jobs import NAME_PATTERN, JobSpec
from jobport.domain.pages import Page
from jobport.domain.schedules import Fire, ScheduleSpec, Timetable
from jobport.errors import Conflict, Invalid, NotFound, error_details, invalid
from jobport.services import executions as execution_service
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import projects as project_store
from jobport.store import schedules as schedule_store

_NAME_RE = re.compile(NAME_PATTERN)
_FIELDS = ("crons", "runAt", "timeZone", "startDate", "endDate", "dstPolicy", "catchupWindow")

# -- change notices: the in-process scheduler sleeps until the next fire or one of these ---------

_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def on_change(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after any schedule of this process is added, changed or removed.

    Returns the function that unsubscribes it. Other processes' changes are seen by polling.
    """
    with _listeners_lock:
        _listeners.append(callback)

    def unsubscribe() -> None:
        with _listeners_lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return unsubscribe


def _changed() -> None:
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        callback()


# -- parsing and state ----------------------------------------------------------------------


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


def spec_of(row: dict[str, Any]) -> ScheduleSpec:
    return ScheduleSpec.model_validate(row["spec"])


def state_of(row: dict[str, Any], spec: ScheduleSpec) -> str:
    """active, disabled, inactive (a one-time schedule that fired) or ended."""
    if not row["enabled"]:
        return "disabled"
    if row["next_fire_at"] is not None:
        return "active"
    if spec.run_at is not None and row["last_fire_at"] is not None:
        return "inactive"
    return "ended"


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored schedule with what the faces show besides it: state and IANA zone."""
    spec = spec_of(row)
    return {**row, "state": state_of(row, spec), "time_zone_iana": spec.timetable().iana}


def next_fire_at(
    timetable: Timetable,
    spec: ScheduleSpec,
    last_fire_at: dt.datetime | None,
    now: dt.datetime,
    grace: float,
    *,
    due_since: dt.datetime | None = None,
) -> dt.datetime | None:
    """The first fire after both `now` and the newest time already fired: never a repeat.

    `due_since`: the stored next fire, when it is due and no scheduler has handled it yet
    (late, or down). Fires from then on are kept for the scheduler's misfire policy instead
    of being dropped unrecorded by the update.
    """
    if not spec.enabled:
        return None
    if last_fire_at is None and spec.run_at is not None:
        # A one-time run asked for "now" reaches us a moment late: still fire it.
        fire = timetable.next_fire(now - dt.timedelta(seconds=grace), inclusive=True)
    else:
        fire = timetable.next_fire(max(now, last_fire_at) if last_fire_at else now)
    if due_since is not None:
        if last_fire_at is not None and last_fire_at >= due_since:
            pending = timetable.next_fire(last_fire_at)
        else:
            pending = timetable.next_fire(due_since, inclusive=True)
        if pending is not None and (fire is None or pending.utc < fire.utc):
            fire = pending
    return fire.utc if fire else None


# -- firing: shared by the scheduler, trigger and backfill -----------------------------------


@dataclass
class Firing:
    """One write transaction's fires: what runs each schedule has, the rows to write in
    bulk at the end, and what to announce once it commits.

    Fire rows and the runs of `allow` jobs are written together by flush(), a few
    statements for a whole batch. A job with another concurrency policy goes through
    services.executions.start_in, which looks at its other runs: pending rows are flushed
    first so it sees them.
    """

    conn: Connection
    now: dt.datetime
    active: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    buffered: set[str] = field(default_factory=set)
    recorded: set[tuple[str, dt.datetime]] = field(default_factory=set)
    started: list[execution_service.Started] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    jobs: dict[str, tuple[dict[str, Any], JobSpec]] = field(default_factory=dict)
    pending_runs: list[dict[str, Any]] = field(default_factory=list)
    pending_fires: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        conn: Connection,
        now: dt.datetime,
        schedules: list[dict[str, Any]],
        *,
        since: dt.datetime | None = None,
    ) -> Firing:
        """The state of these schedules, read in a few statements: their active runs,
        buffered fires, jobs and (from `since` on) the fire times already recorded."""
        ids = [s["id"] for s in schedules]
        firing = cls(
            conn,
            now,
            active=execution_store.active_for_schedules(conn, ids),
            buffered=schedule_store.buffered_for(conn, ids),
        )
        if since is not None:
            firing.recorded = schedule_store.recorded_since(conn, ids, since)
        for job in schedule_store.jobs_of(conn, [s["job_id"] for s in schedules]):
            firing.jobs[job["id"]] = (job, JobSpec.model_validate(job["spec"]))
        return firing

    def job(self, job_id: str) -> tuple[dict[str, Any], JobSpec]:
        if job_id not in self.jobs:
            job = job_store.get_by_id(self.conn, job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r}", code="job_not_found")
            self.jobs[job_id] = (job, JobSpec.model_validate(job["spec"]))
        return self.jobs[job_id]

    def flush(self) -> None:
        """Write the pending runs and fires. DuplicateFire: a time was recorded meanwhile;
        the caller's transaction must roll back (nothing of it stays)."""
        execution_store.insert_executions(self.conn, self.pending_runs)
        schedule_store.insert_fires(self.conn, self.pending_fires)
        self.pending_runs, self.pending_fires = [], []

    def announce(self, rt: Runtime) -> None:
        """After the commit: hand the new runs out, wake waiters of the cancelled ones."""
        for started in self.started:
            execution_service.announce(rt, started)
        if rt.dispatcher is not None:
            for execution_id in self.cancelled:
                rt.dispatcher.notify_final(execution_id)


def fire_row(
    schedule: dict[str, Any],
    fire: Fire,
    *,
    kind: str,
    outcome: str,
    now: dt.datetime,
    reason: str | None = None,
    execution_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "schedule_id": schedule["id"],
        "fire_at": fire.utc,
        "local": fire.local.isoformat(),
        "dst": fire.dst,
        "kind": kind,
        "outcome": outcome,
        "reason": reason[:300] if reason else None,
        "execution_id": execution_id,
        "recorded_at": now,
    }


def record_missed(
    firing: Firing, schedule: dict[str, Any], fire: Fire, reason: str
) -> dict[str, Any] | None:
    """Record a fire that will not run. None if the time is recorded already."""
    if (schedule["id"], fire.utc) in firing.recorded:
        return None
    row = fire_row(schedule, fire, kind="schedule", outcome="missed", now=firing.now, reason=reason)
    firing.recorded.add((schedule["id"], fire.utc))
    firing.pending_fires.append(row)
    return row


def record_fire(
    firing: Firing,
    schedule: dict[str, Any],
    spec: ScheduleSpec,
    fire: Fire,
    *,
    kind: str = "schedule",
    overlap: bool = True,
    strict: bool = False,
    principal: str | None = None,
) -> dict[str, Any] | None:
    """Record one fire and, as the overlap policy says, start its run; both are written by
    firing.flush() in the caller's transaction. None if the time is recorded already.

    `overlap=False` starts regardless of the schedule's previous run (run now); `strict`
    raises the job's refusal (concurrency, parameters) instead of recording a skipped fire.
    """
    schedule_id = schedule["id"]
    if (schedule_id, fire.utc) in firing.recorded:
        return None
    active = firing.active.get(schedule_id, [])
    policy = spec.overlap_policy if overlap else "allow"
    outcome, reason, execution_id = "started", None, None
    if active and policy == "skip":
        outcome, reason = "skipped", "overlap"
    elif active and policy == "bufferOne":
        if schedule_id in firing.buffered:
            outcome, reason = "skipped", "buffer_full"
        else:
            outcome = "buffered"
            firing.buffered.add(schedule_id)
    else:
        if active and policy == "cancelPrevious":
            firing.flush()
            for row in active:
                if execution_service.cancel_in(firing.conn, row) == Status.CANCELLED:
                    firing.cancelled.append(row["id"])
            firing.active[schedule_id] = []
        try:
            started = _start(firing, schedule, spec, fire, principal)
        except (Conflict, Invalid) as exc:
            if strict:
                raise
            outcome, reason = "skipped", f"{exc.code}: {exc.message}"
        else:
            execution_id = started.row["id"]
            firing.started.append(started)
            firing.active.setdefault(schedule_id, []).append(
                {"id": execution_id, "status": Status.QUEUED.value}
            )
            firing.cancelled.extend(i for i, o in started.replaced if o == Status.CANCELLED)
    row = fire_row(
        schedule,
        fire,
        kind=kind,
        outcome=outcome,
        now=firing.now,
        reason=reason,
        execution_id=execution_id,
    )
    firing.recorded.add((schedule_id, fire.utc))
    firing.pending_fires.append(row)
    return row


def _start(
    firing: Firing,
    schedule: dict[str, Any],
    spec: ScheduleSpec,
    fire: Fire,
    principal: str | None,
) -> execution_service.Started:
    job, job_spec = firing.job(schedule["job_id"])
    if job_spec.concurrency_policy != "allow":
        # forbid and replace look at the job's other runs, this batch's included.
        firing.flush()
        return execution_service.start_in(
            firing.conn,
            schedule["project_id"],
            schedule["job_id"],
            parameters=spec.parameters,
            mode=spec.mode,
            trigger=Trigger.SCHEDULE,
            principal=principal,
            schedule_id=schedule["id"],
            schedule_name=schedule["name"],
            schedule_fire_at=fire.utc,
        )
    problems = job_spec.parameter_problems(spec.parameters)
    if problems:  # the job changed since the schedule was defined
        first = problems[0]
        raise Invalid(
            f"the schedule's parameters no longer suit job {job['name']!r}: "
            f"{first['field']}: {first['reason']}",
            code="unknown_parameter"
            if job_spec.parameters_schema is None
            else "invalid_parameters",
            details=problems,
        )
    row = queued_execution(
        execution_id=new_id(),
        job=job,
        trigger=Trigger.SCHEDULE,
        parameters={**job_spec.parameters, **spec.parameters},
        mode=spec.mode,
        now=utcnow(),
        principal=principal,
        schedule_id=schedule["id"],
        schedule_name=schedule["name"],
        schedule_fire_at=fire.utc,
    )
    firing.pending_runs.append(row)
    return execution_service.Started(row, True)


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


def put(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    data: dict[str, Any],
    *,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
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
        values = {
            "spec": spec.wire(),
            "enabled": spec.enabled,
            "next_fire_at": next_fire_at(
                timetable,
                spec,
                last,
                now,
                grace,
                due_since=due if due is not None and due <= now else None,
            ),
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
    _changed()
    return view(row), current is None


def list_for_job(rt: Runtime, project_ref: str, job_ref: str) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        job = _job(conn, project_ref, job_ref)
        rows = schedule_store.for_job(conn, job["id"])
    return [view(r) for r in rows]


def for_job(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    """A job's schedules, for the job's own view (inside the caller's transaction)."""
    return [view(r) for r in schedule_store.for_job(conn, job_id)]


def get(rt: Runtime, project_ref: str, job_ref: str, name: str) -> dict[str, Any]:
    with rt.db.read() as conn:
        job = _job(conn, project_ref, job_ref)
        return view(schedule_store.get(conn, job["id"], name))


def delete(rt: Runtime, project_ref: str, job_ref: str, name: str) -> None:
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule_store.remove(conn, schedule_store.get(conn, job["id"], name)["id"])
    _changed()


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
    row = get(rt, project_ref, job_ref, name)
    timetable = spec_of(row).timetable()
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
    """The schedule's fire history, newest first."""
    with rt.db.read() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule = schedule_store.get(conn, job["id"], name)
        return schedule_store.fires_page(conn, schedule["id"], cursor=cursor, limit=limit)


def trigger(
    rt: Runtime,
    project_ref: str,
    job_ref: str,
    name: str,
    *,
    principal: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the schedule's job now, recorded as one of its fires. Returns (fire, execution)."""
    now = now or utcnow()
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule = schedule_store.get(conn, job["id"], name, lock=True)
        spec = spec_of(schedule)
        fire = Fire(utc=now, local=now.astimezone(ZoneInfo(spec.timetable().iana)), dst=None)
        firing = Firing.load(conn, now, [schedule])
        row = record_fire(
            firing,
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
            firing.flush()
        except schedule_store.DuplicateFire:
            raise Conflict(
                "a fire of this schedule is recorded at this very instant; retry",
                code="fire_exists",
            ) from None
        execution = execution_store.get(conn, row["execution_id"])
    firing.announce(rt)
    return row, execution


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
) -> list[dict[str, Any]]:
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
    schedule = get(rt, project_ref, job_ref, name)
    timetable = spec_of(schedule).timetable()
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
    recorded: list[dict[str, Any]] = []
    with rt.db.write() as conn:
        job = _job(conn, project_ref, job_ref)
        schedule = schedule_store.get(conn, job["id"], name, lock=True)
        spec = spec_of(schedule)
        firing = Firing.load(conn, now, [schedule], since=start)
        for fire in times:
            row = record_fire(firing, schedule, spec, fire, kind="backfill", principal=principal)
            if row is not None:
                recorded.append(row)
        try:
            firing.flush()
        except schedule_store.DuplicateFire:
            raise Conflict(
                "the scheduler fired some of these times meanwhile; retry the backfill",
                code="fire_exists",
            ) from None
    firing.announce(rt)
    return recorded
