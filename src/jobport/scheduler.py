"""The scheduler: fires due schedules into services.executions, exactly once per fire time.

Each schedule stores its next fire time in UTC, indexed. The loop selects only the due rows
(`enabled AND next_fire_at <= now`, oldest first, a batch at a time), and sleeps until the
earliest next fire, a change to a schedule in this process, or the poll interval (changes
made by other processes). In one write transaction per batch it records each fire, starts
its run and advances the schedule; the unique (schedule, fire time) key turns a fire that
another scheduler recorded first into a no-op, so any number of schedulers may run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobport.domain.clock import utcnow
from jobport.domain.executions import Trigger
from jobport.domain.schedules import Fire, ScheduleSpec, Timetable
from jobport.errors import Conflict, Invalid
from jobport.services import executions as execution_service
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import schedules as schedule_store

log = logging.getLogger("jobport.scheduler")

# How far back to look for the newest missed fire when too many were missed to list them.
_LOOKBACK = (60, 3600, 86_400, 31 * 86_400, 366 * 86_400, 10 * 366 * 86_400)


@dataclass(frozen=True)
class Plan:
    """What to do with the fires a schedule has due."""

    run: list[Fire]
    missed: list[tuple[Fire, str]]
    next_fire: Fire | None
    newest: dt.datetime | None  # the newest nominal time handled (run or missed)


def plan_fires(
    timetable: Timetable,
    since: dt.datetime,
    now: dt.datetime,
    *,
    policy: str,
    grace: float,
    catchup_window: float,
    cap: int,
) -> Plan:
    """Sort the fires due in [since, now] into those to run and those missed.

    A fire more than `grace` seconds old is a misfire (the scheduler was down or late):
    `skip` records it missed; `runOnce` runs only the newest due fire and records the others
    missed; `runAll` runs those within `catchup_window` and records older ones missed. At most
    `cap` fires are looked at one by one; the last one recorded says if more were missed.
    """
    head: list[Fire] = []
    next_fire: Fire | None = None
    more = False
    for fire in timetable.fires_after(since, inclusive=True):
        if fire.utc > now:
            next_fire = fire
            break
        if len(head) == cap:
            more = True
            break
        if not head or fire.utc != head[-1].utc:
            head.append(fire)
    if not head:
        return Plan([], [], next_fire, None)
    if more:
        next_fire = timetable.next_fire(now)
    on_time_from = now - dt.timedelta(seconds=grace)
    window_from = now - dt.timedelta(seconds=max(grace, catchup_window))
    late = any(f.utc < on_time_from for f in head)
    if policy == "runOnce" and (late or more):
        newest = _newest_fire(timetable, head[-1].utc, now) if more else None
        run = [newest or head[-1]]
        missed = [f for f in head if f.utc != run[0].utc]
        reason = "misfire_run_once"
    else:
        cut = window_from if policy == "runAll" else on_time_from
        run = [f for f in head if f.utc >= cut]
        missed = [f for f in head if f.utc < cut]
        reason = "misfire_run_all_outside_window" if policy == "runAll" else "misfire_skip"
        if more:
            run += [
                f
                for f in timetable.fires_between(max(head[-1].utc, cut), now)
                if f.utc > head[-1].utc
            ]
    records = [(f, reason) for f in missed]
    if more and records:
        last, why = records[-1]
        records[-1] = (
            last,
            f"{why}; more than {cap} fires due at once: later missed fires up to "
            f"{now.isoformat(timespec='seconds')} are not recorded one by one",
        )
    newest_time = max([f.utc for f in run] + [head[-1].utc])
    return Plan(run, records, next_fire, newest_time)


def _newest_fire(timetable: Timetable, after: dt.datetime, now: dt.datetime) -> Fire | None:
    """The newest fire in (after, now], found without walking every fire since `after`."""
    for seconds in _LOOKBACK:
        start = max(after, now - dt.timedelta(seconds=seconds))
        newest = None
        for fire in timetable.fires_after(start):
            if fire.utc > now:
                break
            newest = fire
        if newest is not None or start == after:
            return newest
    return None


@dataclass
class _Compiled:
    spec: ScheduleSpec
    timetable: Timetable


@dataclass
class Scheduler:
    """Fires due schedules. `tick(now)` does one pass; `run()` loops until stopped.

    `clock` is injectable so tests drive time without sleeping.
    """

    rt: Runtime
    clock: Callable[[], dt.datetime] = utcnow
    batch_size: int | None = None
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _compiled: dict[str, _Compiled] = field(default_factory=dict, init=False)

    @property
    def _batch(self) -> int:
        return self.batch_size or self.rt.settings.scheduler_batch_size

    # -- one pass ----------------------------------------------------------------------------

    def tick(self, now: dt.datetime | None = None) -> int:
        """Handle every fire due at `now`; returns how many fires were recorded."""
        now = now or self.clock()
        handled = self._release_buffered(now)
        conflicts = 0
        while True:
            try:
                count, more = self._fire_batch(now)
            except schedule_store.DuplicateFire:
                # A time was recorded between our read and our write (a backfill that got
                # in first). The whole batch rolled back; the next read skips that time.
                conflicts += 1
                if conflicts > 3:
                    raise
                log.info("a batch met a fire recorded meanwhile; retrying it")
                continue
            handled += count
            if not more:
                return handled

    def _fire_batch(self, now: dt.datetime) -> tuple[int, bool]:
        """One write transaction: the due schedules' fires, runs and next fire times."""
        handled = 0
        with self.rt.db.write() as conn:
            due = schedule_store.due(conn, now, self._batch)
            if not due:
                return 0, False
            since = min(s["next_fire_at"] for s in due)
            firing = schedule_service.Firing.load(conn, now, due, since=since)
            moves = []
            # One lock order for every scheduler (start_in locks the job row of a job that
            # limits concurrency, on PostgreSQL): batches sharing jobs wait, never deadlock.
            for schedule in sorted(due, key=lambda s: (s["job_id"], s["id"])):
                count, move = self._fire_schedule(firing, schedule, now)
                handled += count
                moves.append(move)
            firing.flush()
            schedule_store.advance_many(conn, moves)
        firing.announce(self.rt)
        return handled, len(due) == self._batch

    def _compile(self, schedule: dict[str, Any]) -> _Compiled:
        # Keyed by the definition without its name: schedules that share a definition (the
        # common case) share one parsed spec and timetable.
        key = json.dumps({**schedule["spec"], "name": None}, sort_keys=True)
        cached = self._compiled.get(key)
        if cached is None:
            spec = ScheduleSpec.model_validate(schedule["spec"])
            cached = _Compiled(spec, spec.timetable())
            if len(self._compiled) > 50_000:
                self._compiled.clear()
            self._compiled[key] = cached
        return cached

    def _fire_schedule(
        self, firing: schedule_service.Firing, schedule: dict[str, Any], now: dt.datetime
    ) -> tuple[int, tuple[str, dt.datetime | None, dt.datetime | None]]:
        settings = self.rt.settings
        try:
            compiled = self._compile(schedule)
            plan = plan_fires(
                compiled.timetable,
                schedule["next_fire_at"],
                now,
                policy=compiled.spec.misfire_policy,
                grace=settings.scheduler_misfire_grace_seconds,
                catchup_window=compiled.spec.catchup_window,
                cap=settings.scheduler_missed_record_cap,
            )
        except Exception:
            # One broken schedule must not hold back the others forever: stop it, loudly.
            log.exception("schedule %s cannot be evaluated; it is stopped", schedule["id"])
            return 0, (schedule["id"], None, schedule["last_fire_at"])
        recorded = 0
        for fire, reason in plan.missed:
            if schedule_service.record_missed(firing, schedule, fire, reason) is not None:
                recorded += 1
        for fire in plan.run:
            if schedule_service.record_fire(firing, schedule, compiled.spec, fire) is not None:
                recorded += 1
        last = schedule["last_fire_at"]
        if plan.newest is not None and (last is None or plan.newest > last):
            last = plan.newest
        next_at = plan.next_fire.utc if plan.next_fire else None
        return recorded, (schedule["id"], next_at, last)

    def _release_buffered(self, now: dt.datetime) -> int:
        """Start buffered fires whose schedule's previous run has ended."""
        with self.rt.db.read() as conn:  # most passes have none: no write lock for them
            if not schedule_store.has_buffered(conn):
                return 0
        with self.rt.db.write() as conn:
            rows = schedule_store.buffered(conn, self._batch)
            if not rows:
                return 0
            firing = schedule_service.Firing(conn, now)
            busy = execution_store.active_for_schedules(conn, [r["schedule_id"] for r in rows])
            released = 0
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
                            parameters=spec.parameters,
                            mode=spec.mode,
                            trigger=Trigger.SCHEDULE,
                            schedule_id=fire["schedule_id"],
                            schedule_name=fire["schedule_name"],
                            schedule_fire_at=fire["fire_at"],
                        )
                        if not schedule_store.settle_fire(
                            conn,
                            fire["id"],
                            expected="buffered",
                            outcome="started",
                            reason="buffered until the previous run ended",
                            execution_id=started.row["id"],
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
                firing.started.append(started)
                busy[fire["schedule_id"]] = [started.row]
                released += 1
        firing.announce(self.rt)
        return released

    # -- the loop ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the schedules again now (one was added, changed or removed)."""
        self._wake.set()

    def seconds_to_next(self) -> float:
        """How long the loop may sleep: until the earliest fire, at most the poll interval."""
        poll = self.rt.settings.scheduler_poll_seconds
        with self.rt.db.read() as conn:
            earliest = schedule_store.earliest_next_fire(conn)
        if earliest is None:
            return poll
        return max(0.0, min(poll, (earliest - self.clock()).total_seconds()))

    def run(self) -> None:
        """Fire schedules until stop() is called (blocks: run it on its own thread)."""
        unsubscribe = schedule_service.on_change(self.wake)
        try:
            for delay in self._passes():
                self._wake.wait(delay)
        finally:
            unsubscribe()

    def _passes(self) -> Iterator[float]:
        while not self._stop.is_set():
            # Cleared before the pass: a change made during it wakes the next sleep at once.
            self._wake.clear()
            try:
                self.tick(self.clock())
                delay = self.seconds_to_next()
            except Exception:
                log.exception("scheduler pass failed; retrying")
                delay = self.rt.settings.scheduler_poll_seconds
            if self._stop.is_set():
                return
            yield delay

    def start(self) -> None:
        """Run the loop on a daemon thread (inside `jobport serve`)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="jobport-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class _Settled(Exception):
    """Another scheduler released this buffered fire first."""
