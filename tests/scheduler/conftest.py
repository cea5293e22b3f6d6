"""Scheduler fixtures: a store-only runtime on SQLite, a clock the test moves, and a job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from jobport.domain.executions import Status
from jobport.domain.schedules import Schedule
from jobport.scheduler import Scheduler
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store.db import Database
from jobport.store.tables import executions, schedule_fires
from store.conftest import empty
from store.rows import add_job, add_project

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, now: dt.datetime) -> dt.datetime:
        self.now = now
        return now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class Harness:
    """One job, its schedules, a scheduler on a fake clock, and ways to look at the result."""

    def __init__(self, rt: Runtime, job: dict[str, Any], project: dict[str, Any]) -> None:
        self.rt = rt
        self.job = job
        self.project = project
        self.clock = Clock(T0)
        self.scheduler = Scheduler(rt, clock=self.clock)

    def put(self, name: str = "s", **body: Any) -> Schedule:
        body.setdefault("crons", ["*/5 * * * *"])
        row, _ = schedule_service.put(
            self.rt, self.project["id"], self.job["id"], name, body, now=self.clock()
        )
        return row

    def get(self, name: str = "s") -> Schedule:
        return schedule_service.get(self.rt, self.project["id"], self.job["id"], name)

    def tick_at(self, when: dt.datetime) -> int:
        return self.scheduler.tick(self.clock.set(when))

    def fires(self) -> list[dict[str, Any]]:
        """Every recorded fire, oldest first."""
        with self.rt.db.read() as conn:
            rows = conn.execute(select(schedule_fires).order_by(schedule_fires.c.fire_at))
            return [dict(r._mapping) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        """Every execution, by nominal fire time."""
        with self.rt.db.read() as conn:
            rows = conn.execute(
                select(executions).order_by(executions.c.schedule_fire_at, executions.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def finish_all(self) -> None:
        """End every queued or running execution, as a worker would."""
        with self.rt.db.write() as conn:
            conn.execute(
                update(executions)
                .where(executions.c.status.in_(["queued", "running", "cancelling"]))
                .values(status=Status.SUCCEEDED.value)
            )


def make_runtime(path: Path, **settings: Any) -> Runtime:
    db = Database(f"sqlite:///{path / 'scheduler.db'}")
    db.upgrade()
    return Runtime(Settings(database_url=db.url, **settings), db)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path)
    yield runtime
    runtime.db.dispose()


@pytest.fixture(scope="session")
def scheduler_postgres(postgres_url: str) -> Iterator[Database]:
    """The session's PostgreSQL database, migrated once; each test empties it first."""
    db = Database(postgres_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A harness on SQLite, then on PostgreSQL (row locks differ: both must fire the same)."""
    if request.param == "sqlite":
        rt = make_runtime(tmp_path)
    else:
        db = request.getfixturevalue("scheduler_postgres")
        empty(db)
        rt = Runtime(Settings(database_url=db.url), db)
    with rt.db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project, parameters={"day": "today"})
    yield Harness(rt, job, project)
    if request.param == "sqlite":
        rt.db.dispose()
