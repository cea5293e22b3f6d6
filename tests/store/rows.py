"""Rows shaped the way the services write them, for tests that talk to the store directly."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Connection

from jobport.domain.clock import utcnow
from jobport.domain.executions import Trigger, queued_execution
from jobport.domain.ids import new_id
from jobport.domain.jobs import JobSpec
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import projects as project_store


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def project_row(name: str | None = None, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id(),
        "name": name or unique_name("project"),
        "description": "",
        "created_at": now,
        "updated_at": now,
        **overrides,
    }


def job_spec(name: str, **fields: Any) -> dict[str, Any]:
    """A valid job definition in its stored (camelCase) form; one `echo hi` step by default."""
    fields.setdefault(
        "steps", [{"name": "main", "kind": "command", "config": {"command": "echo hi"}}]
    )
    return JobSpec.model_validate({"name": name, **fields}).wire()


def job_row(
    project_id: str, name: str | None = None, *, created_at: dt.datetime | None = None, **spec: Any
) -> dict[str, Any]:
    name = name or unique_name("job")
    now = created_at or utcnow()
    return {
        "id": new_id(),
        "project_id": project_id,
        "name": name,
        "spec": job_spec(name, **spec),
        "created_at": now,
        "updated_at": now,
    }


def execution_row(job: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A queued execution, as services.executions.start() inserts it."""
    row = queued_execution(
        execution_id=new_id(),
        job=job,
        trigger=Trigger.API,
        parameters=dict(job["spec"].get("parameters", {})),
        mode="full",
        now=utcnow(),
    )
    row.update(overrides)
    return row


def running(
    worker: str = "node-1:100", at: dt.datetime | None = None, **overrides: Any
) -> dict[str, Any]:
    """The columns a claim sets, for execution_row(..., **running())."""
    at = at or utcnow()
    return {
        "status": "running",
        "worker": worker,
        "started_at": at,
        "heartbeat_at": at,
        **overrides,
    }


def add_project(conn: Connection, name: str | None = None, **overrides: Any) -> dict[str, Any]:
    return project_store.create(conn, project_row(name, **overrides))


def add_job(
    conn: Connection, project: dict[str, Any], name: str | None = None, **spec: Any
) -> dict[str, Any]:
    return job_store.create(conn, job_row(project["id"], name, **spec))


def add_execution(conn: Connection, job: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    row = execution_row(job, **overrides)
    execution_store.insert_execution(conn, row)
    return row


def log_lines(first_seq: int, count: int, step: str | None = "main") -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "seq": seq,
            "at": now,
            "step": step,
            "stream": "stdout",
            "level": "info",
            "text": f"line {seq}",
        }
        for seq in range(first_seq, first_seq + count)
    ]


def nbytes(lines: list[dict[str, Any]]) -> int:
    return sum(len(ln["text"].encode()) + 1 for ln in lines)
