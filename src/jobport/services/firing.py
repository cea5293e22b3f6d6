"""Schedule firing, its one owner: plan due fires, record each once, start runs, advance.

Over 400 lines as one cohesive thing: the write transaction of a fire. Its pure decisions
(the next fire, the misfire plan, the overlap decision, a fire's row) are in
domain/schedules/fires.py; what stays here shares one Batch (the transaction's state:
active runs, buffered fires, recorded times, pending rows) and one rule, that a fire time
is recorded exactly once and its run commits with it. Split, the halves would pass that
state and rule back and forth.
"""

# Each schedule stores its next fire time in UTC, indexed. A pass (fire_due) selects only the
# due rows (`enabled AND next_fire_at <= now`, oldest first, a batch at a time). The misfire
# policy plans what to do with each schedule's due fires (fires.plan_fires); in one write
# transaction per batch each fire is recorded, its run started as the overlap policy says
# (record_fire, through services.executions.start_in) and the schedule advanced. The unique
# (schedule, fire time) key turns a fire that another scheduler recorded first into a no-op,
# so any number of schedulers may run. Runs are announced only after the commit, by the
# caller: scheduler.py for passes, services/schedules.py for trigger and backfill.

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from jobport import metrics
from jobport.domain.clock import utcnow
from jobport.domain.executions import Execution, StartRequest, Status, Trigger, queued_execution
from jobport.domain.ids import new_id
from jobport.domain.jobs import JobSpec
from jobport.domain.schedules import Fire, ScheduleSpec, compiled, fires
from jobport.errors import Conflict, Invalid, NotFound
from jobport.services import executions as execution_service
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import schedules as schedule_store

log = logging.getLogger("jobport.scheduler")

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


def changed() -> None:
    """Tell the listeners a schedule was added, changed or removed (after its commit)."""
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        callback()


def next_due(rt: Runtime) -> dt.datetime | None:
    """When the next enabled schedule is due: how long a scheduler may sleep."""
    with rt.db.read() as conn:
        return schedule_store.earliest_next_fire(conn)


# -- one write transaction's fires: records, the overlap policy, runs ---------------------------


@dataclass
class Batch:
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
    pending_executions: list[dict[str, Any]] = field(default_factory=list)
    pending_fires: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0  # fires recorded, or buffered fires started: what a pass reports
    due_times: list[dt.datetime] = field(default_factory=list)  # of fires the metrics count

    @classmethod
    def load(
        cls,
        conn: Connection,
        now: dt.datetime,
        schedules: list[dict[str, Any]],
        *,
        since: dt.datetime | None = None,
    ) -> Batch:
        """The state of these schedules, read in a few statements: their active runs,
        buffered fires, jobs and (from `since` on) the fire times already recorded."""
        ids = [s["id"] for s in schedules]
        batch = cls(
            conn,
            now,
            active=execution_store.active_for_schedules(conn, ids),
            buffered=schedule_store.buffered_for(conn, ids),
        )
        if since is not None:
            batch.recorded = schedule_store.recorded_since(conn, ids, since)
        for job in schedule_store.jobs_of(conn, [s["job_id"] for s in schedules]):
            batch.jobs[job["id"]] = (job, JobSpec.model_validate(job["spec"]))
        return batch

    def job(self, job_id: str) -> tuple[dict[str, Any], JobSpec]:
        if job_id not in self.jobs:
            job = job_store.get_by_id(self.conn, job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r}", code="job_not_found")
            self.jobs[job_id] = (job, JobSpec.model_validate(job["spec"]))
        return self.jobs[job_id]

    def has_recorded(self, schedule: dict[str, Any], fire: Fire) -> bool:
        """Whether this fire time of the schedule is recorded already (stored or pending)."""
        return (schedule["id"], fire.utc) in self.recorded

    def record(
        self,
        schedule: dict[str, Any],
        fire: Fire,
        *,
        kind: str,
        outcome: str,
        reason: str | None = None,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        """Add the row of one fire to those flush() writes, and count its time recorded."""
        row = fires.fire_row(
            schedule,
            fire,
            kind=kind,
            outcome=outcome,
            now=self.now,
            reason=reason,
            execution_id=execution_id,
        )
        self.recorded.add((schedule["id"], fire.utc))
        self.pending_fires.append(row)
        # A missed fire did not fire, and a backfill's times are past on purpose: neither
        # says how late the scheduler is.
        if outcome != "missed" and kind != "backfill":
            self.due_times.append(fire.utc)
        return row

    def flush(self) -> None:
        """Write the pending runs and fires. DuplicateFire: a time was recorded meanwhile;
        the caller's transaction must roll back (nothing of it stays)."""
        execution_store.insert_executions(self.conn, self.pending_executions)
        schedule_store.insert_fires(self.conn, self.pending_fires)
        self.pending_executions, self.pending_fires = [], []

    def announce(self, rt: Runtime) -> None:
        """After the commit: count the fires (metrics), hand the new runs out, wake waiters
        of the cancelled ones."""
        recorded_at = utcnow()
        for due in self.due_times:
            metrics.schedule_fired((recorded_at - due).total_seconds())
        self.due_times = []
        for started in self.started:
            execution_service.announce(rt, started)
        if rt.dispatcher is not None:
            for execution_id in self.cancelled:
                rt.dispatcher.notify_final(execution_id)


def record_missed(
    batch: Batch, schedule: dict[str, Any], fire: Fire, reason: str
) -> dict[str, Any] | None:
    """Record a fire that will not run. None if the time is recorded already."""
    if batch.has_recorded(schedule, fire):
        return None
    return batch.record(schedule, fire, kind="schedule", outcome="missed", reason=reason)


def record_fire(
    batch: Batch,
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
    batch.flush() in the caller's transaction. None if the time is recorded already.

    `overlap=False` starts regardless of the schedule's previous run (run now); `strict`
    raises the job's refusal (concurrency, parameters) instead of recording a skipped fire.
    """
    schedule_id = schedule["id"]
    if batch.has_recorded(schedule, fire):
        return None
    active = batch.active.get(schedule_id, [])
    decision = fires.overlap(
        spec.overlap_policy if overlap else "allow",
        previous_active=bool(active),
        buffer_full=schedule_id in batch.buffered,
    )
    outcome, reason, execution_id = "started", None, None
    if decision in ("overlap", "buffer_full"):
        outcome, reason = "skipped", decision
    elif decision == "buffer":
        outcome = "buffered"
        batch.buffered.add(schedule_id)
    else:
        if decision == "cancel_previous":
            batch.flush()
            for row in active:
                if execution_service.cancel_in(batch.conn, row) == Status.CANCELLED:
                    batch.cancelled.append(row["id"])
            batch.active[schedule_id] = []
        try:
            started = _start(batch, schedule, spec, fire, principal)
        except (Conflict, Invalid) as exc:
            if strict:
                raise
            outcome, reason = "skipped", f"{exc.code}: {exc.message}"
        else:
            execution_id = started.execution.id
            batch.started.append(started)
            batch.active.setdefault(schedule_id, []).append(
                {"id": execution_id, "status": Status.QUEUED.value}
            )
            batch.cancelled.extend(i for i, o in started.replaced if o == Status.CANCELLED)
    return batch.record(
        schedule, fire, kind=kind, outcome=outcome, reason=reason, execution_id=execution_id
    )


def _start(
    batch: Batch,
    schedule: dict[str, Any],
    spec: ScheduleSpec,
    fire: Fire,
    principal: str | None,
) -> execution_service.Started:
    job, job_spec = batch.job(schedule["job_id"])
    if job_spec.concurrency_policy != "allow":
        # forbid and replace look at the job's other runs, this batch's included.
        batch.flush()
        return execution_service.start_in(
            batch.conn,
            schedule["project_id"],
            schedule["job_id"],
            StartRequest(
                parameters=spec.parameters,
                mode=spec.mode,
                trigger=Trigger.SCHEDULE,
                principal=principal,
                schedule_id=schedule["id"],
                schedule_name=schedule["name"],
                schedule_fire_at=fire.utc,
            ),
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
    batch.pending_executions.append(row)
    return _queued(row)


def _queued(row: dict[str, Any]) -> execution_service.Started:
    """An execution this batch inserts itself (an `allow` job), as start_in reports one."""
    return execution_service.Started(Execution.from_row(row), True)


# -- a pass: every fire due at a moment, what the scheduler's loop calls --------------------


def fire_due(rt: Runtime, now: dt.datetime, *, batch_size: int) -> Iterator[Batch]:
    """Handle every fire due at `now`: buffered fires whose previous run ended, then the
    due schedules, `batch_size` per transaction. Yields each batch once it has committed,
    for the caller to announce its runs (Batch.announce) and count its fires."""
    released = _release_buffered(rt, now, batch_size)
    if released is not None:
        yield released
    conflicts = 0
    while True:
        try:
            batch, more = _fire_batch(rt, now, batch_size)
        except schedule_store.DuplicateFire:
            # A time was recorded between our read and our write (a backfill that got
            # in first). The whole batch rolled back; the next read skips that time.
            conflicts += 1
            if conflicts > 3:
                raise
            log.info("a batch met a fire recorded meanwhile; retrying it")
            continue
        if batch is not None:
            yield batch
        if not more:
            return


def _fire_batch(rt: Runtime, now: dt.datetime, limit: int) -> tuple[Batch | None, bool]:
    """One write transaction: the due schedules' fires, runs and next fire times."""
    with rt.db.write() as conn:
        due = schedule_store.due(conn, now, limit)
        if not due:
            return None, False
        since = min(s["next_fire_at"] for s in due)
        batch = Batch.load(conn, now, due, since=since)
        moves = []
        # One lock order for every scheduler (start_in locks the job row of a job that
        # limits concurrency, on PostgreSQL): batches sharing jobs wait, never deadlock.
        for schedule in sorted(due, key=lambda s: (s["job_id"], s["id"])):
            moves.append(_fire_schedule(batch, schedule, now, rt))
        batch.flush()
        schedule_store.advance_many(conn, moves)
    return batch, len(due) == limit


def _fire_schedule(
    batch: Batch, schedule: dict[str, Any], now: dt.datetime, rt: Runtime
) -> tuple[str, dt.datetime | None, dt.datetime | None]:
    """Record one schedule's due fires; returns its move (id, next fire, last fire)."""
    settings = rt.settings
    try:
        spec, timetable = compiled(schedule["spec"])
        plan = fires.plan_fires(
            timetable,
            schedule["next_fire_at"],
            now,
            policy=spec.misfire_policy,
            grace=settings.scheduler_misfire_grace_seconds,
            catchup_window=spec.catchup_window,
            cap=settings.scheduler_missed_record_cap,
        )
    except Exception:
        # One broken schedule must not hold back the others forever: stop it, loudly.
        log.exception("schedule %s cannot be evaluated; it is stopped", schedule["id"])
        return schedule["id"], None, schedule["last_fire_at"]
    for fire, reason in plan.missed:
        if record_missed(batch, schedule, fire, reason) is not None:
            batch.count += 1
    for fire in plan.run:
        if record_fire(batch, schedule, spec, fire) is not None:
            batch.count += 1
    last = schedule["last_fire_at"]
    if plan.newest is not None and (last is None or plan.newest > last):
        last = plan.newest
    next_at = plan.next_fire.utc if plan.next_fire else None
    return schedule["id"], next_at, last


def _release_buffered(rt: Runtime, now: dt.datetime, limit: int) -> Batch | None:
    """Start buffered fires whose schedule's previous run has ended (committed on return)."""
    with rt.db.read() as conn:  # most passes have none: no write lock for them
        if not schedule_store.has_buffered(conn):
            return None
    with rt.db.write() as conn:
        rows = schedule_store.buffered(conn, limit)
        if not rows:
            return None
        batch = Batch(conn, now)
        busy = execution_store.active_for_schedules(conn, [r["schedule_id"] for r in rows])
        for fire in rows:
            if busy.get(fire["schedule_id"]):
                continue
            spec = ScheduleSpec.model_validate(fire["spec"])
            try:
                with conn.begin_nested():
                    started = execution_service.start_in(
                        conn,
                        fire["project_id"],
                        fire["job_id"],
                        StartRequest(
                            parameters=spec.parameters,
                            mode=spec.mode,
                            trigger=Trigger.SCHEDULE,
                            schedule_id=fire["schedule_id"],
                            schedule_name=fire["schedule_name"],
                            schedule_fire_at=fire["fire_at"],
                        ),
                    )
                    if not schedule_store.settle_fire(
                        conn,
                        fire["id"],
                        expected="buffered",
                        outcome="started",
                        reason="buffered until the previous run ended",
                        execution_id=started.execution.id,
                    ):
                        raise _Settled()
            except _Settled:
                continue
            except (Conflict, Invalid) as exc:
                schedule_store.settle_fire(
                    conn,
                    fire["id"],
                    expected="buffered",
                    outcome="skipped",
                    reason=f"{exc.code}: {exc.message}",
                    execution_id=None,
                )
                continue
            batch.started.append(started)
            busy[fire["schedule_id"]] = [
                {"id": started.execution.id, "status": Status.QUEUED.value}
            ]
            batch.count += 1
    return batch


class _Settled(Exception):
    """Another scheduler released this buffered fire first."""
