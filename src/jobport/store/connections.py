"""Connections repository, and the watermarks of delta transfers.

A connection row holds its secrets only as a Fernet token (`secret`, see store/secrets.py);
the caller encrypts before insert and decrypts after read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from jobport.domain.pages import Page
from jobport.errors import Conflict, NotFound
from jobport.store.db import savepoint
from jobport.store.pagination import fetch_page
from jobport.store.tables import connections, step_watermarks


def insert_connection(conn: Connection, row: dict[str, Any]) -> None:
    clash = Conflict(f"a connection named {row['name']!r} exists", code="already_exists")
    with savepoint(conn, clash=clash):
        conn.execute(insert(connections).values(**row))


def find(conn: Connection, project_id: str, connection_ref: str) -> dict[str, Any] | None:
    """A project's connection by name or id."""
    rows = conn.execute(
        select(connections).where(
            connections.c.project_id == project_id,
            or_(connections.c.id == connection_ref, connections.c.name == connection_ref),
        )
    ).all()
    rows.sort(key=lambda r: r.id != connection_ref)  # an id wins over a look-alike name
    return dict(rows[0]._mapping) if rows else None


def get(conn: Connection, project_id: str, connection_ref: str) -> dict[str, Any]:
    row = find(conn, project_id, connection_ref)
    if row is None:
        raise NotFound(
            f"no connection {connection_ref!r} in this project", code="connection_not_found"
        )
    return row


def list_page(conn: Connection, project_id: str, *, cursor: str | None, limit: int) -> Page:
    query = select(connections).where(connections.c.project_id == project_id)
    return fetch_page(
        conn,
        query,
        connections.c.name,
        connections.c.id,
        descending=False,
        cursor=cursor,
        limit=limit,
    )


def update_connection(conn: Connection, connection_id: str, values: dict[str, Any]) -> None:
    clash = Conflict(f"a connection named {values.get('name')!r} exists", code="already_exists")
    with savepoint(conn, clash=clash):
        conn.execute(update(connections).where(connections.c.id == connection_id).values(**values))


def delete_connection(conn: Connection, connection_id: str) -> None:
    conn.execute(delete(connections).where(connections.c.id == connection_id))


# --- watermarks ---------------------------------------------------------------------------


def watermark(conn: Connection, job_id: str, step: str) -> Any:
    """The watermark the last successful run of the job's step saw; None if none yet."""
    return conn.execute(
        select(step_watermarks.c.value).where(
            step_watermarks.c.job_id == job_id, step_watermarks.c.step == step
        )
    ).scalar_one_or_none()


def set_watermark(
    conn: Connection, job_id: str, step: str, value: Any, execution_id: str, now: Any
) -> None:
    """Record the step's new watermark (in the transaction that records the run's success)."""
    where = (step_watermarks.c.job_id == job_id, step_watermarks.c.step == step)
    values = {"value": value, "execution_id": execution_id, "updated_at": now}
    if conn.execute(update(step_watermarks).where(*where).values(**values)).rowcount == 0:
        conn.execute(insert(step_watermarks).values(job_id=job_id, step=step, **values))
