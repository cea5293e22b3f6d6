"""Retention's SQL: which ended runs (or only their logs) may go, and removing them in
small pieces. Every selection reads one partial index by job and end time (migration 0006)
and re-checks that the run has ended, so an active run is never touched."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Table, case, delete, func, select, update

from jobport.domain.executions import FINAL_STATUSES
from jobport.store.tables import execution_items, execution_logs, executions, jobs

_FINAL = [s.value for s in FINAL_STATUSES]
_KEY = {execution_logs.name: execution_logs.c.seq, execution_items.name: execution_items.c.idx}


def job_policies(conn: Connection) -> list[tuple[str, Any]]:
    """Every job's id and the `retention` of its spec (None when it has none)."""
    rows = conn.execute(select(jobs.c.id, jobs.c.spec))
    return [(r.id, (r.spec or {}).get("retention")) for r in rows]


def nth_newest_end(conn: Connection, job_id: str, n: int) -> dt.datetime | None:
    """When the job's n-th newest ended run ended (None: it has fewer). Runs that ended
    before it are beyond the last n."""
    row = conn.execute(
        select(executions.c.finished_at)
        .where(executions.c.job_id == job_id, executions.c.finished_at.is_not(None))
        .order_by(executions.c.finished_at.desc())
        .offset(n - 1)
        .limit(1)
    ).first()
    return row.finished_at if row else None


def ended_before(
    conn: Connection, job_id: str, cutoff: dt.datetime, limit: int, *, logs_only: bool = False
) -> list[tuple[str, int]]:
    """Up to `limit` of the job's runs that ended before `cutoff`, oldest first, each with
    the number of log lines its counter says it has; with `logs_only`, only runs whose log
    is still there. Locked (skipping what another pruner holds) on PostgreSQL; on SQLite
    the write transaction holds the database."""
    query = select(executions.c.id, executions.c.log_lines).where(
        executions.c.job_id == job_id,
        executions.c.finished_at < cutoff,
        executions.c.status.in_(_FINAL),
    )
    if logs_only:
        query = query.where(executions.c.logs_pruned_at.is_(None))
    query = query.order_by(executions.c.finished_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [(r.id, r.log_lines) for r in conn.execute(query)]


def delete_logs(conn: Connection, ids: list[str]) -> int:
    """Delete every log line of these runs (their counters say how many: a caller keeps a
    transaction small by choosing them); how many went."""
    if not ids:
        return 0
    result = conn.execute(delete(execution_logs).where(execution_logs.c.execution_id.in_(ids)))
    return int(result.rowcount or 0)


def with_items(conn: Connection, ids: list[str]) -> set[str]:
    """Those of these runs that have foreach items."""
    if not ids:
        return set()
    query = select(execution_items.c.execution_id).where(execution_items.c.execution_id.in_(ids))
    return set(conn.execute(query.distinct()).scalars())


def delete_children(conn: Connection, table: Table, execution_id: str, limit: int) -> int:
    """Delete up to `limit` rows of `table` (log lines or items) of one run, first first;
    how many went. Fewer than `limit`: the run has none left."""
    key = _KEY[table.name]
    first = (
        select(key).where(table.c.execution_id == execution_id).order_by(key).limit(limit)
    ).scalar_subquery()
    result = conn.execute(delete(table).where(table.c.execution_id == execution_id, key.in_(first)))
    return int(result.rowcount or 0)


def delete_runs(conn: Connection, ids: list[str]) -> int:
    """Delete these runs (their log lines and items must be gone first), if they ended."""
    if not ids:
        return 0
    result = conn.execute(
        delete(executions).where(executions.c.id.in_(ids), executions.c.status.in_(_FINAL))
    )
    return int(result.rowcount or 0)


def mark_logs_pruned(conn: Connection, ids: list[str], at: dt.datetime) -> int:
    """Record that these ended runs' logs are gone (the runs stay)."""
    if not ids:
        return 0
    result = conn.execute(
        update(executions)
        .where(executions.c.id.in_(ids), executions.c.status.in_(_FINAL))
        .values(logs_pruned_at=at)
    )
    return int(result.rowcount or 0)


def count_ended_before(
    conn: Connection,
    job_id: str,
    cutoff: dt.datetime,
    *,
    not_before: dt.datetime | None = None,
    logs_only: bool = False,
) -> tuple[int, int, int]:
    """What pruning the job's runs that ended before `cutoff` (and from `not_before` on)
    would remove: (runs, log lines, items); with `logs_only`, the runs whose log is still
    there and their log lines, no items. Log lines as the runs' counters say."""
    where = [
        executions.c.job_id == job_id,
        executions.c.finished_at < cutoff,
        executions.c.status.in_(_FINAL),
    ]
    if not_before is not None:
        where.append(executions.c.finished_at >= not_before)
    if logs_only:
        where.append(executions.c.logs_pruned_at.is_(None))
    kept_lines = case((executions.c.logs_pruned_at.is_(None), executions.c.log_lines), else_=0)
    runs, lines = conn.execute(
        select(func.count(), func.coalesce(func.sum(kept_lines), 0)).where(*where)
    ).one()
    items = 0
    if not logs_only and runs:
        ids = select(executions.c.id).where(*where)
        items = conn.execute(
            select(func.count())
            .select_from(execution_items)
            .where(execution_items.c.execution_id.in_(ids))
        ).scalar_one()
    return int(runs), int(lines), int(items)
