"""Conclude an execution: its final status, last log lines, the watermarks its steps saw
(only on success) and, if due, its retry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from jobport import metrics
from jobport.domain.clock import utcnow
from jobport.domain.executions import (
    ErrorCode,
    Status,
    StepStatus,
    Trigger,
    queued_execution,
    retry_delay,
)
from jobport.domain.ids import new_id
from jobport.domain.jobs import JobSpec
from jobport.domain.values import clean, clean_text
from jobport.store import connections as connection_store
from jobport.store import executions as execution_store
from jobport.store import items as item_store
from jobport.store import logs as log_store
from jobport.store import projects as project_store
from jobport.store.db import Database


@dataclass(frozen=True)
class Concluded:
    execution_id: str
    job_id: str
    status: Status | None  # None: it had already ended; nothing changed
    retry_id: str | None = None
    retry_at: dt.datetime | None = None
    limited: bool = False  # the job has maxConcurrent: queued runs may be waiting for this one


def conclude(
    db: Database,
    execution_id: str,
    status: Status,
    **values: Any,
) -> Concluded:
    """conclude_in(), in a transaction of its own."""
    with db.write() as conn:
        return conclude_in(conn, execution_id, status, **values)


def conclude_in(
    conn: Connection,
    execution_id: str,
    status: Status,
    *,
    result: Any = None,
    error_code: str | None = None,
    error_message: str | None = None,
    steps: list[dict[str, Any]] | None = None,
    log_lines: list[dict[str, Any]] | None = None,
    log_bytes: int = 0,
    iteration: dict[str, Any] | None = None,
    claimed: dict[str, Any] | None = None,
) -> Concluded:
    """Move a running (or cancelling) execution to its final status, with its last log
    lines and its retry, in the caller's write transaction (a worker claims its next run in
    the same one: engine/worker.py).

    A cancel request wins over any other ending but success is not claimed after it:
    `cancelling` always ends `cancelled`. `claimed` is the row as the worker claimed it:
    its fields that never change after the claim spare reading it again when it is still
    `running` (the usual case: one UPDATE then, no SELECT).
    """
    values = _final_values(result, error_code, error_message, steps, iteration)
    lines = list(log_lines or [])
    counted = (
        execution_store.finish_running(
            conn, execution_id, status, log_counts=(len(lines), log_bytes), **values
        )
        if claimed is not None
        else None
    )
    if counted is not None:
        row = claimed
        if status in (Status.FAILED, Status.TIMED_OUT):  # a retry counts its log lines
            row = execution_store.find(conn, execution_id) or claimed
    else:
        counted = (0, 0)
        row = execution_store.find(conn, execution_id)
        if row is None:
            return Concluded(execution_id, "", None)
        current = Status(row["status"])
        if current.is_final or current == Status.QUEUED:
            return Concluded(execution_id, row["job_id"], None)
        if current == Status.CANCELLING and status != Status.CANCELLED:
            status = Status.CANCELLED
            values.update(
                result=None,
                error_code=ErrorCode.CANCELLED,
                error_message="cancelled on request",
            )
        if not execution_store.transition(conn, execution_id, status, [current], **values):
            return Concluded(execution_id, row["job_id"], None)
    started = row["started_at"]
    metrics.run_finished(
        project_store.name_of(conn, row["project_id"]),
        row["job_name"],
        status.value,
        (values["finished_at"] - started).total_seconds() if started else None,
    )
    if status == Status.SUCCEEDED:
        for step, mark in watermarks(row["spec"], values["result"], steps).items():
            connection_store.set_watermark(
                conn, row["job_id"], step, mark, execution_id, values["finished_at"]
            )
    retry_id, retry_at = None, None
    if status in (Status.FAILED, Status.TIMED_OUT) and row["attempt"] <= row["spec"].get(
        "retries", 0
    ):
        spec = JobSpec.model_validate(row["spec"])
        delay = retry_delay(row["attempt"], spec.retry_delay_seconds, spec.retry_backoff)
        retry_id = new_id()
        retry_at = utcnow() + dt.timedelta(seconds=delay)
        execution_store.insert_execution(conn, _retry_row(row, retry_id, retry_at))
        seq = (lines[-1]["seq"] if lines else row["log_lines"]) + 1
        text = f"retrying as execution {retry_id} in {delay:g}s (attempt {row['attempt'] + 1})"
        lines.append(
            {
                "seq": seq,
                "at": utcnow(),
                "step": None,
                "stream": "system",
                "level": "warning",
                "text": text,
            }
        )
        log_bytes += len(text) + 1
    log_store.append(conn, execution_id, lines, log_bytes, counted)
    limited = bool(row["spec"].get("maxConcurrent"))
    return Concluded(execution_id, row["job_id"], status, retry_id, retry_at, limited)


def _final_values(
    result: Any,
    error_code: str | None,
    error_message: str | None,
    steps: list[dict[str, Any]] | None,
    iteration: dict[str, Any] | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "finished_at": utcnow(),
        "result": clean(result),
        "error_code": error_code,
        "error_message": clean_text(error_message) if error_message else None,
    }
    if steps is not None:
        values["steps"] = clean(steps)
    if iteration is not None:
        values["iteration"] = clean(iteration)
    return values


def conclude_alone(
    db: Database,
    execution_id: str,
    status: Status,
    *,
    result: Any = None,
    error_code: str | None = None,
    error_message: str | None = None,
    steps: list[dict[str, Any]] | None = None,
    log_lines: list[dict[str, Any]] | None = None,
    log_bytes: int = 0,
    iteration: dict[str, Any] | None = None,
    claimed: dict[str, Any],
) -> Concluded | None:
    """A worker's usual end on PostgreSQL in one statement, in autocommit
    (store/executions.finish_with_lines): a run still running, with no retry to insert and
    no watermark to record. None when it is not that case, or the run was not running any
    more (a cancel, say): then conclude() decides, in its transaction."""
    lines = list(log_lines or [])
    if (
        not db.is_postgres
        or iteration is not None
        or steps is None
        or len(lines) > log_store.ROWS_PER_INSERT  # a long last batch: the usual INSERTs
    ):
        return None
    spec = claimed["spec"]
    if status in (Status.FAILED, Status.TIMED_OUT) and claimed["attempt"] <= spec.get("retries", 0):
        return None
    values = _final_values(result, error_code, error_message, steps, None)
    if status == Status.SUCCEEDED and watermarks(spec, values["result"], steps):
        return None
    with db.autocommit() as conn:
        if not execution_store.finish_with_lines(
            conn, execution_id, status, values, lines, log_bytes
        ):
            return None
        project = project_store.name_of(conn, claimed["project_id"])
    started = claimed["started_at"]
    metrics.run_finished(
        project,
        claimed["job_name"],
        status.value,
        (values["finished_at"] - started).total_seconds() if started else None,
    )
    return Concluded(
        execution_id, claimed["job_id"], status, limited=bool(spec.get("maxConcurrent"))
    )


def watermarks(
    spec: dict[str, Any], result: Any, steps: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The `watermarkAfter` each step of a succeeded run returned, by step name: from a
    step's state where the runner put it there, and from the execution's result for the
    step that gave it (the one marked `result`, else the last). Steps without one, or with
    None, keep the watermark they had."""
    found: dict[str, Any] = {}
    names = [s["name"] for s in spec.get("steps", [])]
    if isinstance(result, dict) and result.get("watermarkAfter") is not None and names:
        marked = [s["name"] for s in spec["steps"] if s.get("result")]
        found[marked[0] if marked else names[-1]] = result["watermarkAfter"]
    for state in steps or []:
        if state.get("watermarkAfter") is not None and state.get("name") in names:
            found[state["name"]] = state["watermarkAfter"]
    return found


def _resume(db: Database, row: dict[str, Any], reason: str) -> Concluded | None:
    """Queue a lost foreach run again: its ended items stay ended (store/items.py), the
    others run when a worker claims it. None when it is not one to resume."""
    summary = row.get("iteration")
    if (
        not row["spec"].get("foreach")
        or row["status"] != Status.RUNNING
        or not summary
        or summary.get("resumes", 0) >= MAX_RESUMES
    ):
        return None
    now = utcnow()
    with db.write() as conn:
        moved = execution_store.transition(
            conn,
            row["id"],
            Status.QUEUED,
            [Status.RUNNING],
            worker=None,
            heartbeat_at=None,
            iteration={**summary, "resumes": summary.get("resumes", 0) + 1},
        )
        if not moved:
            return None
        item_store.reopen_unfinished(conn, row["id"])
        current = execution_store.find(conn, row["id"])
        seq = (current or row)["log_lines"] + 1
        text = f"worker lost: {reason}; resuming the items that had not ended"
        line = {"seq": seq, "at": now, "step": None, "stream": "system", "level": "warning"}
        log_store.append(conn, row["id"], [{**line, "text": text}], len(text) + 1)
    return Concluded(row["id"], row["job_id"], Status.QUEUED, row["id"], now)


def _retry_row(row: dict[str, Any], retry_id: str, retry_at: dt.datetime) -> dict[str, Any]:
    job = {
        "id": row["job_id"],
        "project_id": row["project_id"],
        "name": row["job_name"],
        "spec": row["spec"],
    }
    return queued_execution(
        execution_id=retry_id,
        job=job,
        trigger=Trigger.RETRY,
        parameters=row["parameters"],
        mode=row["mode"],
        now=utcnow(),
        not_before=retry_at,
        principal=row["principal"],
        attempt=row["attempt"] + 1,
        retry_of=row["id"],
    )


MAX_RESUMES = 3  # a foreach run whose worker dies this often fails: an item may be the cause


def conclude_lost(db: Database, execution_id: str, reason: str) -> Concluded:
    """The worker holding this execution is gone: fail it with `worker_lost`, or, for a
    foreach run, queue it again to resume its items (at most MAX_RESUMES times)."""
    with db.read() as conn:
        row = execution_store.find(conn, execution_id)
    if row is None:
        return Concluded(execution_id, "", None)
    resumed = _resume(db, row, reason)
    if resumed is not None:
        return resumed
    steps = [
        {**s, "status": StepStatus.FAILED.value, "error": ErrorCode.WORKER_LOST.value}
        if s.get("status") == StepStatus.RUNNING.value
        else s
        for s in row["steps"]
    ]
    seq = row["log_lines"] + 1
    text = f"worker lost: {reason}"
    line = {
        "seq": seq,
        "at": utcnow(),
        "step": None,
        "stream": "system",
        "level": "error",
        "text": text,
    }
    return conclude(
        db,
        execution_id,
        Status.FAILED,
        error_code=ErrorCode.WORKER_LOST,
        error_message=reason,
        steps=steps,
        log_lines=[line],
        log_bytes=len(text) + 1,
    )
