"""Execution log lines: appended in batches, read by cursor."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from jobport.store.tables import execution_logs, executions


def append(
    conn: Connection,
    execution_id: str,
    lines: list[dict[str, Any]],
    nbytes: int,
    counted: tuple[int, int] = (0, 0),
) -> None:
    """Insert `lines` (each with seq, at, step, stream, level, text) and bump the counters,
    less the (lines, bytes) the caller `counted` already (a run's ending UPDATE does)."""
    if not lines:
        return
    _insert_many(conn, execution_id, lines)
    more_lines, more_bytes = len(lines) - counted[0], nbytes - counted[1]
    if more_lines or more_bytes:
        conn.execute(
            _COUNT, {"count_id": execution_id, "count_lines": more_lines, "count_bytes": more_bytes}
        )


_COUNT = (  # built once: every batch of lines bumps its run's counters
    update(executions)
    .where(executions.c.id == bindparam("count_id"))
    .values(
        log_lines=executions.c.log_lines + bindparam("count_lines"),
        log_bytes=executions.c.log_bytes + bindparam("count_bytes"),
    )
)


_COLUMNS = "execution_id, seq, at, step, stream, level, text, iteration"


def _insert_many(conn: Connection, execution_id: str, lines: list[dict[str, Any]]) -> None:
    """One driver-level executemany: log batches are the hottest write there is.

    Timestamps are bound as the tables' UTCDateTime stores them: naive UTC, and on
    SQLite in SQLAlchemy's text format, so reads through the table are unchanged.
    """
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = []
    for ln in lines:
        if ln["at"].tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        at = ln["at"].astimezone(dt.UTC).replace(tzinfo=None)
        rows.append(
            (
                execution_id,
                ln["seq"],
                at.strftime(_SQLITE_TIME) if sqlite else at,
                ln["step"],
                ln["stream"],
                ln["level"],
                ln["text"],
                ln.get("iteration"),
            )
        )
    row = f"({', '.join([mark] * 8)})"
    if sqlite:  # sqlite3's executemany is one C loop
        conn.exec_driver_sql(f"INSERT INTO execution_logs ({_COLUMNS}) VALUES {row}", rows)
        return
    # PostgreSQL: a multi-row INSERT per ROWS_PER_INSERT lines, one round trip each;
    # psycopg's executemany pipelines one statement per row, costly for the few lines most
    # batches hold (a run's last ones).
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        values = ", ".join([row] * len(chunk))
        flat = tuple(value for line in chunk for value in line)
        conn.exec_driver_sql(f"INSERT INTO execution_logs ({_COLUMNS}) VALUES {values}", flat)


ROWS_PER_INSERT = 200  # 1,600 parameters, far under PostgreSQL's 65,535


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def read(
    conn: Connection,
    execution_id: str,
    *,
    after: int,
    limit: int,
    iteration: int | None = None,
) -> list[dict[str, Any]]:
    """Lines after seq `after`, in order; with `iteration`, only that foreach item's."""
    query = select(execution_logs).where(
        execution_logs.c.execution_id == execution_id, execution_logs.c.seq > after
    )
    if iteration is not None:
        query = query.where(execution_logs.c.iteration == iteration)
    rows = conn.execute(query.order_by(execution_logs.c.seq).limit(limit))
    return [dict(r._mapping) for r in rows]
