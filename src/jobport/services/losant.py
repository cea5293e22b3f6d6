"""What Losant's resource-job face reads that the other services do not hand out: a
project's foreach jobs all at once (Losant sorts and pages by fields jobport does not index),
a job's runs with the definition each ran with, a run by its object id, and data tables
(a table on a connection) by their object id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from jobport.domain.executions import Execution
from jobport.domain.ids import object_id
from jobport.domain.jobs import Job
from jobport.domain.projects import Project
from jobport.services import jobs as job_service
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import projects as project_store

_BATCH = 500  # jobs read per page while gathering a project's resource jobs
MOST_RESOURCE_JOBS = 10_000  # a project's foreach jobs a listing considers


@dataclass(frozen=True, slots=True)
class Run:
    """An execution with the job definition it runs with (its own copy: a run given another
    query or source keeps it there)."""

    execution: Execution
    definition: dict[str, Any]


def table_id(project_id: str, connection: str, table: str) -> str:
    """The 24-hex id Losant's face shows for a table on a connection (its dataTableId)."""
    return object_id(f"{project_id}/{connection}/{table}")


def resource_jobs(rt: Runtime, project_ref: str) -> tuple[Project, list[Job]]:
    """The project and every job of it that has `foreach`, each with its newest run."""
    with rt.db.read() as conn:
        project = Project.from_row(project_store.get(conn, project_ref))
    found: list[Job] = []
    cursor: str | None = None
    while len(found) < MOST_RESOURCE_JOBS:
        page = job_service.list_page(rt, project.id, cursor=cursor, limit=_BATCH)
        found.extend(job for job in page.items if job.definition.get("foreach"))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return project, found[:MOST_RESOURCE_JOBS]


def runs(
    rt: Runtime, project_id: str, job_id: str, *, since: dt.datetime | None, limit: int
) -> list[Run]:
    """The job's runs created at or after `since`, newest first, at most `limit`."""
    with rt.db.read() as conn:
        page = execution_store.list_page(
            conn,
            project_id,
            job_id=job_id,
            statuses=[],
            created_after=since,
            created_before=None,
            cursor=None,
            limit=limit,
        )
    return [Run(Execution.from_row(row), row["spec"]) for row in page.items]


def run_by_object_id(rt: Runtime, oid: str) -> Run | None:
    """The run whose object id is `oid`, or None."""
    with rt.db.read() as conn:
        row = execution_store.find_by_object_id(conn, oid.lower())
    return Run(Execution.from_row(row), row["spec"]) if row is not None else None


def find_table(rt: Runtime, project_id: str, data_table_id: str) -> dict[str, str] | None:
    """The table (`{"connection", "table"}`) whose dataTableId is `data_table_id`, among the
    tables the project's jobs iterate over; None when no job names it."""
    wanted = data_table_id.lower()
    with rt.db.read() as conn:
        cursor: str | None = None
        while True:
            page = job_store.list_page(
                conn,
                project_id,
                name_contains=None,
                label=None,
                sort="name",
                cursor=cursor,
                limit=_BATCH,
            )
            for row in page.items:
                source = (row["spec"].get("foreach") or {}).get("source") or {}
                table = source.get("table")
                if table and table_id(project_id, table["connection"], table["table"]) == wanted:
                    return {"connection": table["connection"], "table": table["table"]}
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor
