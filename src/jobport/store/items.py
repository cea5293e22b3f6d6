"""The items of foreach runs: stored once when a run resolves them, each final status
written as the item ends (in the log writer's transactions), read back on resume."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from jobport.store.tables import execution_items

_FINAL = ("succeeded", "failed", "timed_out")
_BATCH = 1000


def insert_pending(conn: Connection, execution_id: str, items: list[Any]) -> None:
    """Store a run's items, all pending, in index order."""
    for start in range(0, len(items), _BATCH):
        rows = [
            {
                "execution_id": execution_id,
                "idx": index,
                "item": item,
                "status": "pending",
                "attempts": 0,
            }
            for index, item in enumerate(items[start : start + _BATCH], start)
        ]
        conn.execute(insert(execution_items), rows)


def count(conn: Connection, execution_id: str) -> int:
    query = select(func.count()).where(execution_items.c.execution_id == execution_id)
    return int(conn.execute(query).scalar_one())


def load(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    """Every item of the run (index, item, status, attempts), in index order."""
    query = (
        select(
            execution_items.c.idx,
            execution_items.c.item,
            execution_items.c.status,
            execution_items.c.attempts,
        )
        .where(execution_items.c.execution_id == execution_id)
        .order_by(execution_items.c.idx)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


_RECORD = (
    update(execution_items)
    .where(
        execution_items.c.execution_id == bindparam("eid"),
        execution_items.c.idx == bindparam("i"),
    )
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        started_at=bindparam("started_at"),
        finished_at=bindparam("finished_at"),
        error=bindparam("error"),
    )
)


def record(conn: Connection, execution_id: str, ended: Iterable[dict[str, Any]]) -> None:
    """Write items' ends: each {idx, status, attempts, started_at, finished_at, error}."""
    rows = [
        {
            "eid": execution_id,
            "i": e["idx"],
            "status": e["status"],
            "attempts": e["attempts"],
            "started_at": e.get("started_at"),
            "finished_at": e.get("finished_at"),
            "error": e.get("error"),
        }
        for e in ended
    ]
    if rows:
        conn.execute(_RECORD, rows)


def counts(conn: Connection, execution_id: str) -> dict[str, int]:
    """How many items of the run are in each status."""
    query = (
        select(execution_items.c.status, func.count())
        .where(execution_items.c.execution_id == execution_id)
        .group_by(execution_items.c.status)
    )
    return {status: int(n) for status, n in conn.execute(query)}


def page(
    conn: Connection,
    execution_id: str,
    *,
    after: int,
    limit: int,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Items after index `after` (a cursor), optionally of one status."""
    query = select(execution_items).where(
        execution_items.c.execution_id == execution_id, execution_items.c.idx > after
    )
    if status is not None:
        query = query.where(execution_items.c.status == status)
    query = query.order_by(execution_items.c.idx).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def reopen_unfinished(conn: Connection, execution_id: str) -> None:
    """A resumed run: every item that did not end is pending again."""
    conn.execute(
        update(execution_items)
        .where(
            execution_items.c.execution_id == execution_id,
            execution_items.c.status.not_in(_FINAL),
        )
        .values(status="pending")
    )
