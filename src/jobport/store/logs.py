"""Execution log lines: appended in batches, read by cursor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from jobport.store.tables import execution_logs, executions


def append(conn: Connection, execution_id: str, lines: list[dict[str, Any]], nbytes: int) -> None:
    """Insert `lines` (each with seq, at, step, stream, level, text) and bump the counters."""
    if not lines:
        return
    conn.execute(insert(execution_logs), [{"execution_id": execution_id, **ln} for ln in lines])
    conn.execute(
        update(executions)
        .where(executions.c.id == execution_id)
        .values(
            log_lines=executions.c.log_lines + len(lines),
            log_bytes=executions.c.log_bytes + nbytes,
        )
    )


def read(conn: Connection, execution_id: str, *, after: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(execution_logs)
        .where(execution_logs.c.execution_id == execution_id, execution_logs.c.seq > after)
        .order_by(execution_logs.c.seq)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]
