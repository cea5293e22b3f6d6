"""Projects repository."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update

from jobport.domain.ids import object_id, object_ref
from jobport.domain.pages import Page
from jobport.errors import Conflict, NotFound
from jobport.store.db import savepoint
from jobport.store.pagination import fetch_page
from jobport.store.tables import projects


def _named(name: Any) -> Conflict:
    """What a write that meets a project of the same name raises."""
    return Conflict(f"a project named {name!r} exists", code="already_exists")


def create(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    row.setdefault("object_id", object_id(row["id"]))
    with savepoint(conn, clash=_named(row["name"])):
        conn.execute(insert(projects).values(**row))
    return row


# Built once: every project-scoped request resolves its project, often twice.
_BY_REF = select(projects).where(
    or_(
        projects.c.id == bindparam("project_ref"),
        projects.c.name == bindparam("project_ref"),
        projects.c.object_id == bindparam("object_ref"),
    )
)


def find(conn: Connection, project_ref: str) -> dict[str, Any] | None:
    """A project by id, by name, or by the 24-hex object id vendor faces show."""
    params = {"project_ref": project_ref, "object_ref": object_ref(project_ref)}
    rows = conn.execute(_BY_REF, params).all()
    # A name may look like another project's id: the id wins, then the object id, so a
    # reference never drifts.
    rows.sort(key=lambda r: (r.id != project_ref, r.object_id != params["object_ref"]))
    return dict(rows[0]._mapping) if rows else None


_NAMES: dict[str, tuple[str, float]] = {}  # id: (name, until when it is trusted)


def name_of(conn: Connection, project_id: str, ttl: float = 60.0) -> str:
    """A project's name by id, remembered `ttl` seconds (for metrics' labels: a rename
    shows there within that time)."""
    now = time.monotonic()
    known = _NAMES.get(project_id)
    if known is not None and known[1] > now:
        return known[0]
    found = conn.execute(select(projects.c.name).where(projects.c.id == project_id)).scalar()
    name = found or project_id
    if len(_NAMES) > 10_000:
        _NAMES.clear()
    _NAMES[project_id] = (name, now + ttl)
    return name


def get(conn: Connection, project_ref: str) -> dict[str, Any]:
    project = find(conn, project_ref)
    if project is None:
        raise NotFound(f"no project {project_ref!r}", code="project_not_found")
    return project


def list_page(
    conn: Connection, *, cursor: str | None, limit: int, only: set[str] | None = None
) -> Page:
    base = select(projects)
    if only is not None:
        base = base.where(projects.c.id.in_(sorted(only)))
    return fetch_page(
        conn, base, projects.c.name, projects.c.id, descending=False, cursor=cursor, limit=limit
    )


def update_fields(conn: Connection, project_id: str, values: dict[str, Any]) -> None:
    with savepoint(conn, clash=_named(values.get("name"))):
        conn.execute(update(projects).where(projects.c.id == project_id).values(**values))


def remove(conn: Connection, project_id: str) -> None:
    conn.execute(delete(projects).where(projects.c.id == project_id))
