"""Schedules repository: schedules, their due rows, and the fires they recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from jobport.domain.pages import Page
from jobport.errors import Conflict, NotFound
from jobport.store.db import savepoint
from jobport.store.pagination import fetch_page
from jobport.store.tables import jobs, schedule_fires, schedules


class DuplicateFire(Exception):
    """This (schedule, fire time) is recorded already: another scheduler or request had it."""


def insert_schedule(conn: Connection, row: dict[str, Any]) -> None:
    taken = Conflict(
        f"the job got a schedule named {row['name']!r} meanwhile; retry",
        code="concurrent_update",
    )
    with savepoint(conn, clash=taken):
        conn.execute(insert(schedules).values(**row))


def find(conn: Connection, job_id: str, name: str, *, lock: bool = False) -> dict[str, Any] | None:
    """The job's schedule called `name`; `lock` holds its row until commit on PostgreSQL."""
    query = select(schedules).where(schedules.c.job_id == job_id, schedules.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def get(conn: Connection, job_id: str, name: str, *, lock: bool = False) -> dict[str, Any]:
    row = find(conn, job_id, name, lock=lock)
    if row is None:
        raise NotFound(f"the job has no schedule {name!r}", code="schedule_not_found")
    return row


def for_job(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(schedules).where(schedules.c.job_id == job_id).order_by(schedules.c.name)
    )
    return [dict(r._mapping) for r in rows]


def update_fields(conn: Connection, schedule_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(**values))


def remove(conn: Connection, schedule_id: str) -> None:
    conn.execute(delete(schedules).where(schedules.c.id == schedule_id))


def due(conn: Connection, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Enabled schedules whose next fire is at or before `now`, oldest first, locked.

    An index range scan on (enabled, next_fire_at): never a scan of every schedule. On
    PostgreSQL, rows another scheduler holds are skipped rather than waited for; SQLite
    needs nothing, its write transactions run one at a time.
    """
    query = (
        select(schedules)
        .where(schedules.c.enabled.is_(True), schedules.c.next_fire_at <= now)
        .order_by(schedules.c.next_fire_at, schedules.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [dict(r._mapping) for r in conn.execute(query)]


def earliest_next_fire(conn: Connection) -> dt.datetime | None:
    """When the next enabled schedule is due (the first entry of the same index)."""
    return conn.execute(
        select(func.min(schedules.c.next_fire_at)).where(schedules.c.enabled.is_(True))
    ).scalar_one_or_none()


def advance(
    conn: Connection,
    schedule_id: str,
    next_fire_at: dt.datetime | None,
    last_fire_at: dt.datetime | None,
) -> None:
    advance_many(conn, [(schedule_id, next_fire_at, last_fire_at)])


def advance_many(
    conn: Connection, moves: list[tuple[str, dt.datetime | None, dt.datetime | None]]
) -> None:
    """Set (id, next_fire_at, last_fire_at) of many schedules in one statement."""
    if not moves:
        return
    conn.execute(
        update(schedules)
        .where(schedules.c.id == bindparam("b_id"))
        .values(next_fire_at=bindparam("b_next"), last_fire_at=bindparam("b_last")),
        [{"b_id": i, "b_next": n, "b_last": last} for i, n, last in moves],
    )


def jobs_of(conn: Connection, job_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The jobs of a batch of schedules, in one query."""
    ids = sorted(set(job_ids))
    if not ids:
        return []
    return [dict(r._mapping) for r in conn.execute(select(jobs).where(jobs.c.id.in_(ids)))]


# -- fires -----------------------------------------------------------------------------------


def insert_fires(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Record fires in one statement. DuplicateFire leaves the transaction failed (on
    PostgreSQL): the caller rolls it back whole, so no run is left without its fire."""
    if not rows:
        return
    try:
        conn.execute(insert(schedule_fires), rows)
    except IntegrityError as exc:
        raise DuplicateFire(f"{len(rows)} fires, one already recorded") from exc


def recorded_since(
    conn: Connection, schedule_ids: Iterable[str], since: dt.datetime
) -> set[tuple[str, dt.datetime]]:
    """(schedule id, fire time) recorded at or after `since` (a range of the unique key)."""
    ids = list(schedule_ids)
    if not ids:
        return set()
    rows = conn.execute(
        select(schedule_fires.c.schedule_id, schedule_fires.c.fire_at).where(
            schedule_fires.c.schedule_id.in_(ids), schedule_fires.c.fire_at >= since
        )
    )
    return {(r.schedule_id, r.fire_at) for r in rows}


def fire_times(
    conn: Connection, schedule_id: str, start: dt.datetime, end: dt.datetime
) -> set[dt.datetime]:
    """Nominal times recorded for the schedule in [start, end]."""
    rows = conn.execute(
        select(schedule_fires.c.fire_at).where(
            schedule_fires.c.schedule_id == schedule_id,
            schedule_fires.c.fire_at >= start,
            schedule_fires.c.fire_at <= end,
        )
    )
    return {r.fire_at for r in rows}


def fires_page(conn: Connection, schedule_id: str, *, cursor: str | None, limit: int) -> Page:
    return fetch_page(
        conn,
        select(schedule_fires).where(schedule_fires.c.schedule_id == schedule_id),
        schedule_fires.c.fire_at,
        schedule_fires.c.id,
        descending=True,
        cursor=cursor,
        limit=limit,
    )


def find_fire(conn: Connection, fire_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(schedule_fires).where(schedule_fires.c.id == fire_id)).first()
    return dict(row._mapping) if row else None


def buffered_for(conn: Connection, schedule_ids: Iterable[str]) -> set[str]:
    """Which of these schedules hold a buffered fire."""
    ids = list(schedule_ids)
    if not ids:
        return set()
    rows = conn.execute(
        select(schedule_fires.c.schedule_id).where(
            schedule_fires.c.outcome == "buffered", schedule_fires.c.schedule_id.in_(ids)
        )
    )
    return {r.schedule_id for r in rows}


def has_buffered(conn: Connection) -> bool:
    return (
        conn.execute(
            select(schedule_fires.c.id).where(schedule_fires.c.outcome == "buffered").limit(1)
        ).first()
        is not None
    )


def buffered(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Buffered fires with their schedule, oldest first (rows others hold are skipped)."""
    query = (
        select(
            schedule_fires,
            schedules.c.project_id,
            schedules.c.job_id,
            schedules.c.name.label("schedule_name"),
            schedules.c.spec,
        )
        .join(schedules, schedules.c.id == schedule_fires.c.schedule_id)
        .where(schedule_fires.c.outcome == "buffered")
        .order_by(schedule_fires.c.fire_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # The schedule row too: the fire path (`due`) locks it, so releasing a buffered fire
        # and firing the same schedule anew never run side by side and both start a run.
        query = query.with_for_update(of=[schedule_fires, schedules], skip_locked=True)
    return [dict(r._mapping) for r in conn.execute(query)]


def settle_fire(
    conn: Connection,
    fire_id: str,
    *,
    expected: str,
    outcome: str,
    reason: str | None,
    execution_id: str | None,
) -> bool:
    """Compare-and-set a fire's outcome (a buffered fire starts once, by one scheduler)."""
    result = conn.execute(
        update(schedule_fires)
        .where(schedule_fires.c.id == fire_id, schedule_fires.c.outcome == expected)
        .values(outcome=outcome, reason=reason, execution_id=execution_id)
    )
    return result.rowcount == 1
