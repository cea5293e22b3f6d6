"""Project use-cases."""

from __future__ import annotations

from typing import Any

from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.domain.jobs import is_valid_name
from jobport.domain.pages import Page
from jobport.domain.projects import Project
from jobport.errors import Conflict, Invalid
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import projects as project_store


def _check_name(name: str) -> None:
    if not is_valid_name(name):
        raise Invalid(
            f"project name {name[:50]!r} is not valid: 1-200 letters, digits, space, '_', '-', '.'",
            code="invalid_request",
            details=[{"field": "name", "reason": "1-200 letters, digits, space, '_', '-', '.'"}],
        )


def create(rt: Runtime, name: str, description: str = "") -> Project:
    _check_name(name)
    now = utcnow()
    row = {
        "id": new_id(),
        "name": name,
        "description": description,
        "created_at": now,
        "updated_at": now,
    }
    with rt.db.write() as conn:
        return Project.from_row(project_store.create(conn, row))


def get(rt: Runtime, project_ref: str) -> Project:
    with rt.db.read() as conn:
        return Project.from_row(project_store.get(conn, project_ref))


def ensure(rt: Runtime, name: str, description: str = "") -> tuple[Project, bool]:
    """The project named `name`, created if missing; the flag says whether it was."""
    with rt.db.read() as conn:
        found = project_store.find(conn, name)
    if found is not None:
        return Project.from_row(found), False
    try:
        return create(rt, name, description), True
    except Conflict:
        return get(rt, name), False


def list_page(rt: Runtime, *, cursor: str | None, limit: int, only: set[str] | None = None) -> Page:
    """A page of Projects by name; `only` limits it to these ids (None: every project)."""
    with rt.db.read() as conn:
        page = project_store.list_page(conn, cursor=cursor, limit=limit, only=only)
    return Page([Project.from_row(r) for r in page.items], page.next_cursor)


def patch(rt: Runtime, project_ref: str, changes: dict[str, Any]) -> Project:
    if "name" in changes:
        _check_name(changes["name"])
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        if changes:
            project_store.update_fields(conn, project["id"], {**changes, "updated_at": utcnow()})
        return Project.from_row(project_store.get(conn, project["id"]))


def delete(rt: Runtime, project_ref: str) -> None:
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        active = execution_store.first_active_in_project(conn, project["id"])
        if active is not None:
            raise Conflict(
                "the project has executions still queued or running; cancel them first",
                code="executions_active",
                details={"executionId": active},
            )
        project_store.remove(conn, project["id"])
