"""Jobs repository."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update

from jobport.domain.ids import object_id, object_ref
from jobport.domain.pages import Page
from jobport.errors import Conflict, NotFound
from jobport.store.db import savepoint
from jobport.store.pagination import fetch_page, page_of
from jobport.store.tables import jobs

SORTS = {"name": jobs.c.name, "createdAt": jobs.c.created_at, "updatedAt": jobs.c.updated_at}


def _named(name: Any) -> Conflict:
    """What a write that meets a job of the same name in the project raises."""
    return Conflict(f"a job named {name!r} exists in this project", code="already_exists")


def create(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    row.setdefault("object_id", object_id(row["id"]))
    with savepoint(conn, clash=_named(row["name"])):
        conn.execute(insert(jobs).values(**row))
    return row


# Built once (every execute resolves its job): the values are parameters.
_BY_REF = select(jobs).where(
    jobs.c.project_id == bindparam("project_id"),
    or_(
        jobs.c.id == bindparam("job_ref"),
        jobs.c.name == bindparam("job_ref"),
        jobs.c.object_id == bindparam("object_ref"),
    ),
)
_BY_REF_LOCKED = _BY_REF.with_for_update()


def find(
    conn: Connection, project_id: str, job_ref: str, *, lock: bool = False
) -> dict[str, Any] | None:
    """A job of the project by id, by name or by its 24-hex object id (what vendor faces
    show); `lock` takes a row lock on PostgreSQL."""
    oid = object_ref(job_ref)
    query = _BY_REF_LOCKED if lock and conn.dialect.name == "postgresql" else _BY_REF
    rows = conn.execute(
        query, {"project_id": project_id, "job_ref": job_ref, "object_ref": oid}
    ).all()
    # A name may look like another job's id: the id wins, then the object id, so a
    # reference never drifts.
    rows.sort(key=lambda r: (r.id != job_ref, r.object_id != oid))
    return dict(rows[0]._mapping) if rows else None


def get(conn: Connection, project_id: str, job_ref: str, *, lock: bool = False) -> dict[str, Any]:
    job = find(conn, project_id, job_ref, lock=lock)
    if job is None:
        raise NotFound(f"no job {job_ref!r} in this project", code="job_not_found")
    return job


def get_by_id(conn: Connection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return dict(row._mapping) if row else None


def list_page(
    conn: Connection,
    project_id: str,
    *,
    name_contains: str | None,
    label: tuple[str, str] | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> Page:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    query = select(jobs).where(jobs.c.project_id == project_id)
    if name_contains:
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(jobs.c.name.ilike(f"%{escaped}%", escape="\\"))
    if label is None:
        return fetch_page(
            conn, query, SORTS[key], jobs.c.id, descending=descending, cursor=cursor, limit=limit
        )
    # Labels live inside the JSON spec; filter them in Python over the ordered scan.
    rows: list[dict[str, Any]] = []
    scan_cursor = cursor
    while len(rows) <= limit:
        scanned = fetch_page(
            conn, query, SORTS[key], jobs.c.id, descending=descending, cursor=scan_cursor, limit=500
        )
        rows.extend(
            r for r in scanned.items if r["spec"].get("labels", {}).get(label[0]) == label[1]
        )
        if scanned.next_cursor is None:
            break
        scan_cursor = scanned.next_cursor
    return page_of(rows, limit, SORTS[key].key)


def update_fields(conn: Connection, job_id: str, values: dict[str, Any]) -> None:
    with savepoint(conn, clash=_named(values.get("name"))):
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def remove(conn: Connection, job_id: str) -> None:
    conn.execute(delete(jobs).where(jobs.c.id == job_id))
