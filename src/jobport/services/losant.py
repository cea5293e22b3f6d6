"""What Losant's resource-job face reads that the other services do not hand out: a
project's foreach jobs all at once (Losant sorts and pages by fields jobport does not index),
a job's runs with the definition each ran with, a run by its object id, and data tables
(a table on one of the project's connections) by their object id."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect

from jobport.domain.executions import Execution
from jobport.domain.ids import object_id
from jobport.domain.jobs import Job
from jobport.domain.projects import Project
from jobport.engine.connections import bounded_engine
from jobport.services import connections as connection_service
from jobport.services import jobs as job_service
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import projects as project_store

_BATCH = 500  # jobs read per page while gathering a project's resource jobs
MOST_RESOURCE_JOBS = 10_000  # a project's foreach jobs a listing considers
TABLES_TIMEOUT = 5.0  # seconds a connection has to name its tables


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
    """The table (`{"connection", "table"}`) whose dataTableId is `data_table_id`: one a job
    of the project iterates over, else one of the tables its SQL connections hold (their
    default schema's). None when there is no such table."""
    wanted = data_table_id.lower()
    for connection, table in _job_tables(rt, project_id):
        if table_id(project_id, connection, table) == wanted:
            return {"connection": connection, "table": table}
    for connection, table in _connection_tables(rt, project_id):
        if table_id(project_id, connection, table) == wanted:
            return {"connection": connection, "table": table}
    return None


def _job_tables(rt: Runtime, project_id: str) -> Iterator[tuple[str, str]]:
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
                if table:
                    yield table["connection"], table["table"]
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def _connection_tables(rt: Runtime, project_id: str) -> Iterator[tuple[str, str]]:
    """(connection, table) for every table the project's SQL connections answer with. A
    connection that does not answer within TABLES_TIMEOUT, or fails, names none: this is a
    lookup, and its errors (which could quote a URL) go nowhere."""
    cursor: str | None = None
    while True:
        page = connection_service.list_page(rt, project_id, cursor=cursor, limit=_BATCH)
        for connection in page.items:
            if connection.kind != "sql":
                continue
            url = connection_service.resolve(rt, project_id, connection.id).url
            for table in _table_names(url, TABLES_TIMEOUT):
                yield connection.name, table
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _table_names(url: str, timeout: float) -> list[str]:
    found: list[list[str]] = []

    def read() -> None:
        with contextlib.suppress(Exception):
            found.append(_inspect_tables(url, timeout))

    reader = threading.Thread(target=read, name="jobport-losant-tables", daemon=True)
    reader.start()
    reader.join(timeout + 1)
    return found[0] if found else []


def _inspect_tables(url: str, timeout: float) -> list[str]:
    engine = bounded_engine(url, timeout, read_only=True)
    try:
        return list(inspect(engine).get_table_names())
    finally:
        engine.dispose()
