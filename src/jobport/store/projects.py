"""Projects repository."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from jobport.domain.pages import Page
from jobport.errors import Conflict, NotFound
from jobport.store.pagination import page_of, paginate
from jobport.store.tables import projects


def create(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    try:
        with conn.begin_nested():
            conn.execute(insert(projects).values(**row))
    except IntegrityError as exc:
        raise Conflict(f"a project named {row['name']!r} exists", code="already_exists") from exc
    return row


# Built once: every project-scoped request resolves its project, often twice.
_BY_REF = select(projects).where(
    or_(projects.c.id == bindparam("ref"), projects.c.name == bindparam("ref"))
)


def find(conn: Connection, ref: str) -> dict[str, Any] | None:
    """A project by id or by name."""
    rows = conn.execute(_BY_REF, {"ref": ref}).all()
    # A name may look like another project's id: the id wins, so a reference never drifts.
    rows.sort(key=lambda r: r.id != ref)
    return dict(rows[0]._mapping) if rows else None


def get(conn: Connection, ref: str) -> dict[str, Any]:
    project = find(conn, ref)
    if project is None:
        raise NotFound(f"no project {ref!r}", code="project_not_found")
    return project


def list_page(
    conn: Connection, *, cursor: str | None, limit: int, only: set[str] | None = None
) -> Page:
    base = select(projects)
    if only is not None:
        base = base.where(projects.c.id.in_(sorted(only)))
    query = paginate(
        base,
        projects.c.name,
        projects.c.id,
        descending=False,
        cursor=cursor,
        limit=limit,
    )
    rows = [dict(r._mapping) for r in conn.execute(query)]
    return page_of(rows, limit, "name")


def update_fields(conn: Connection, project_id: str, values: dict[str, Any]) -> None:
    try:
        with conn.begin_nested():
            conn.execute(update(projects).where(projects.c.id == project_id).values(**values))
    except IntegrityError as exc:
        raise Conflict(
            f"a project named {values.get('name')!r} exists", code="already_exists"
        ) from exc


def remove(conn: Connection, project_id: str) -> None:
    conn.execute(delete(projects).where(projects.c.id == project_id))
