"""Exactly once: schedulers racing on one database never start a fire twice, nor miss one."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from jobport.scheduler import Scheduler
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store import schedules as schedule_store
from jobport.store.db import Database
from jobport.store.tables import executions, schedule_fires

from .rows import add_job, add_project

T0 = dt.datetime(2026, 5, 4, 8, 0, 30, tzinfo=dt.UTC)
SCHEDULES = 200
MINUTES = 3


def runtime(db: Database) -> Runtime:
    return Runtime(Settings(database_url=db.url), db)


def define(rt: Runtime, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`count` every-minute schedules spread over four jobs."""
    with rt.db.write() as conn:
        project = add_project(conn)
        jobs = [add_job(conn, project) for _ in range(4)]
    body = {"crons": ["* * * * *"], "overlapPolicy": "allow"}
    for i in range(count):
        schedule_service.put(rt, project["id"], jobs[i % 4]["id"], f"s{i}", body, now=T0)
    return project, jobs


def fires_and_runs(db: Database) -> tuple[list[Any], list[Any]]:
    with db.read() as conn:
        fires = conn.execute(
            select(schedule_fires.c.schedule_id, schedule_fires.c.fire_at, schedule_fires.c.outcome)
        ).all()
        runs = conn.execute(
            select(executions.c.schedule_id, executions.c.schedule_fire_at, executions.c.id)
        ).all()
    return fires, runs


def test_two_schedulers_on_one_database_start_each_fire_exactly_once(db: Database) -> None:
    rt = runtime(db)
    define(rt, SCHEDULES)
    # Small batches, so the two interleave many transactions per minute.
    schedulers = [Scheduler(runtime(db), batch_size=15) for _ in range(2)]
    barrier = threading.Barrier(2)

    def drive(scheduler: Scheduler) -> int:
        handled = 0
        for minute in range(1, MINUTES + 1):
            barrier.wait(timeout=60)
            handled += scheduler.tick(T0 + dt.timedelta(minutes=minute))
        return handled

    with ThreadPoolExecutor(2) as pool:
        handled = list(pool.map(drive, schedulers))

    fires, runs = fires_and_runs(db)
    expected = SCHEDULES * MINUTES
    assert sum(handled) == expected
    assert len(fires) == expected
    assert {f.outcome for f in fires} == {"started"}
    per_fire = Counter((r.schedule_id, r.schedule_fire_at) for r in runs)
    assert len(runs) == expected, "an execution without its fire, or a fire started twice"
    assert max(per_fire.values()) == 1
    assert set(per_fire) == {(f.schedule_id, f.fire_at) for f in fires}


def test_a_fire_recorded_elsewhere_is_skipped_and_the_rest_still_fire(db: Database) -> None:
    rt = runtime(db)
    project, jobs = define(rt, 1)
    schedule = schedule_service.get(rt, project["id"], jobs[0]["id"], "s0")
    minute = T0 + dt.timedelta(seconds=30)
    # Another scheduler (here a backfill) got 08:01 and 08:02 in first, with their runs.
    schedule_service.backfill(
        rt,
        project["id"],
        jobs[0]["id"],
        "s0",
        minute,
        minute + dt.timedelta(minutes=1),
        now=minute + dt.timedelta(minutes=2),
    )
    with db.write() as conn:
        # ...but this schedule's row was not advanced yet: as if read before that commit.
        schedule_store.advance(conn, schedule.id, minute, None)
    Scheduler(rt).tick(T0 + dt.timedelta(minutes=3, seconds=1))
    fires, runs = fires_and_runs(db)
    assert sorted(f.fire_at.minute for f in fires) == [1, 2, 3]
    assert Counter(r.schedule_fire_at for r in runs).most_common(1)[0][1] == 1
    assert len(runs) == 3
