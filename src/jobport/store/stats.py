"""Counts for the metrics gauges, read at scrape time: runs waiting and running per queue."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, and_, func, or_, select

from jobport.domain.executions import Status
from jobport.store.tables import executions

DEFAULT_QUEUE = "default"
_RUNNING = [Status.RUNNING.value, Status.CANCELLING.value]


def queue_counts(conn: Connection, now: dt.datetime) -> dict[str, tuple[int, int]]:
    """{queue: (queued and due, running)}: the queue is the job's `queue` as the run holds
    it in its spec (`default` when unset).

    Only the active runs are read, through the (status, not_before) index; the queue is a
    JSON field, read by the database (json_extract on SQLite, ->> on PostgreSQL)."""
    queue = func.coalesce(executions.c.spec["queue"].as_string(), DEFAULT_QUEUE).label("queue")
    due = and_(executions.c.status == Status.QUEUED.value, executions.c.not_before <= now)
    query = (
        select(queue, executions.c.status, func.count().label("n"))
        .where(or_(due, executions.c.status.in_(_RUNNING)))
        .group_by(queue, executions.c.status)
    )
    counts: dict[str, tuple[int, int]] = {}
    for name, status, n in conn.execute(query):
        waiting, running = counts.get(name, (0, 0))
        if status == Status.QUEUED.value:
            waiting += n
        else:
            running += n
        counts[name] = (waiting, running)
    return counts
