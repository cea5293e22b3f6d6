"""Execution use-cases: start (idempotently), wait, cancel, read status, logs and results."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from jobport import metrics
from jobport.domain.clock import utcnow
from jobport.domain.executions import (
    ErrorCode,
    Execution,
    LogLine,
    Mode,
    StartRequest,
    Status,
    queued_execution,
)
from jobport.domain.ids import new_id
from jobport.domain.iteration import Item, ItemStatus
from jobport.domain.jobs import JobSpec
from jobport.domain.pages import Page
from jobport.errors import Conflict, Invalid, error_details, invalid
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import items as item_store
from jobport.store import jobs as job_store
from jobport.store import logs as log_store
from jobport.store import projects as project_store

log = logging.getLogger("jobport.executions")

_CALLER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$")


def _check_start_input(
    spec: JobSpec, parameters: dict[str, Any], mode: str, execution_id: str | None
) -> None:
    if mode not in {m.value for m in Mode}:
        raise Invalid(
            f"mode must be 'full' or 'delta', not {mode!r}",
            code="invalid_mode",
            details=[{"field": "mode", "reason": "must be full or delta"}],
        )
    if execution_id is not None and not _CALLER_ID.match(execution_id):
        raise Invalid(
            "executionId must be 1-200 characters of letters, digits, '_', '.', ':', '-'",
            code="invalid_execution_id",
            details=[{"field": "executionId", "reason": "invalid"}],
        )
    problems = spec.parameter_problems(parameters)
    if problems:
        if spec.parameters_schema is None:
            known = ", ".join(sorted(spec.parameters)) or "none"
            unknown = [p["field"].removeprefix("parameters.") for p in problems]
            raise Invalid(
                f"unknown parameter(s) {unknown} for job {spec.name!r} (declared: {known})",
                code="unknown_parameter",
                details=problems,
            )
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Invalid(
            f"{first['field']}: {first['reason']}{more}",
            code="invalid_parameters",
            details=problems,
        )


def _context(spec: JobSpec, given: Any) -> dict[str, Any] | None:
    """The run's template context: the job's defaults with the caller's over them."""
    if given is not None and not isinstance(given, dict):
        raise Invalid(
            "context must be a JSON object",
            code="invalid_context",
            details=[{"field": "context", "reason": "must be an object"}],
        )
    if not given and not spec.context:
        return None
    return {**spec.context, **(given or {})}


def _with_foreach(definition: dict[str, Any], spec: JobSpec, overrides: Any) -> dict[str, Any]:
    """The definition this run keeps (its own copy): a foreach job's with the caller's
    `query` and `source` in place of the job's, checked as a job definition would be."""
    if not overrides:
        return definition
    if spec.foreach is None:
        raise Invalid(
            f"job {spec.name!r} has no foreach: a query or source applies only to one that has",
            code="invalid_foreach",
            details=[{"field": "foreach", "reason": "the job has no foreach"}],
        )
    unknown = set(overrides) - {"query", "source"}
    if unknown or not isinstance(overrides, dict):
        raise Invalid(
            f"foreach may give only query and source for one run (got {sorted(unknown)})",
            code="invalid_foreach",
            details=[{"field": "foreach", "reason": "only query and source"}],
        )
    changed = {**definition, "foreach": {**definition["foreach"], **overrides}}
    try:
        JobSpec.model_validate(changed)
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False))
        what = "invalid foreach for this run"
        raise invalid(details, what=what, code="invalid_foreach") from None
    return changed


@dataclass(frozen=True)
class Started:
    """What start_in() did, for its caller to announce once the transaction commits."""

    execution: Execution
    created: bool  # False: a replayed id or key, nothing new was queued
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (id, outcome) cancelled


def start(
    rt: Runtime, project_ref: str, job_ref: str, request: StartRequest
) -> tuple[Execution, bool]:
    """Queue a run of the job. Returns (execution, created); a replayed id or key is not new."""
    with rt.db.write() as conn:
        started = start_in(conn, project_ref, job_ref, request)
    if started.created:
        announce(rt, started)
    return started.execution, started.created


def start_batch(
    rt: Runtime, starts: list[tuple[str, str, StartRequest]]
) -> list[tuple[Execution, bool]]:
    """Several starts in one write transaction (services/starts.py, group commit), each
    project and job read once. Raises if any one fails: nothing of the batch is stored then."""
    lookups, plain = Lookups(), []
    with rt.db.write() as conn:
        started = [start_in(conn, p, j, request, lookups, plain) for p, j, request in starts]
        execution_store.insert_executions(conn, plain)  # one statement for the plain starts
    # Committed: from here nothing may raise, or the caller would start them all again.
    for one in started:
        if one.created:
            try:
                announce(rt, one)
            except Exception:  # the sweep hands out a queued run nobody was given
                log.exception("could not hand out execution %s", one.execution.id)
    return [(one.execution, one.created) for one in started]


class Lookups:
    """The projects and jobs (with their parsed spec) one transaction has read, by reference:
    a batch of starts of one job reads it once."""

    def __init__(self) -> None:
        self._projects: dict[str, dict[str, Any]] = {}
        self._jobs: dict[tuple[str, str], tuple[dict[str, Any], JobSpec]] = {}

    def project(self, conn: Connection, ref: str) -> dict[str, Any]:
        project = self._projects.get(ref)
        if project is None:
            project = self._projects[ref] = project_store.get(conn, ref)
        return project

    def job(self, conn: Connection, project_id: str, ref: str) -> tuple[dict[str, Any], JobSpec]:
        key = (project_id, ref)
        found = self._jobs.get(key)
        if found is None:
            job = job_store.get(conn, project_id, ref)
            found = self._jobs[key] = (job, JobSpec.model_validate(job["spec"]))
        return found


def start_in(
    conn: Connection,
    project_ref: str,
    job_ref: str,
    request: StartRequest,
    lookups: Lookups | None = None,
    plain: list[dict[str, Any]] | None = None,
) -> Started:
    """start() inside the caller's write transaction, so a schedule's fire and its run commit
    together. The caller announces the run with announce() after the commit. `lookups`
    shares the project and job reads of one transaction between several starts. Given
    `plain`, a start that cannot clash (an `allow` job, no executionId, no Idempotency-Key:
    a fresh id) leaves its row there for the caller to insert with the others, before the
    commit; an insert that fails then fails them all."""
    parameters = dict(request.parameters)
    mode, execution_id = request.mode, request.execution_id
    idempotency_key = request.idempotency_key
    replaced: list[tuple[str, str]] = []
    lookups = lookups or Lookups()
    project = lookups.project(conn, project_ref)
    job, spec = lookups.job(conn, project["id"], job_ref)
    if spec.concurrency_policy != "allow":
        # forbid and replace look at the job's other runs: one start at a time per job (a
        # row lock on PostgreSQL). An `allow` job takes none, so its starts go in parallel;
        # the insert's foreign key check holds off a concurrent delete of the job.
        job = job_store.get(conn, project["id"], job["id"], lock=True)
        spec = JobSpec.model_validate(job["spec"])
    if execution_id is not None:
        existing = execution_store.find(conn, execution_id)
        if existing is not None:
            return Started(*_replay(existing, job["id"], "executionId"))
    if idempotency_key is not None:
        existing = execution_store.find_by_idempotency_key(conn, project["id"], idempotency_key)
        if existing is not None:
            return Started(*_replay(existing, job["id"], "Idempotency-Key"))
    _check_start_input(spec, parameters, mode, execution_id)
    context = _context(spec, request.context)
    stored_spec = _with_foreach(job["spec"], spec, request.foreach)
    # An `allow` job never needs to look at its other runs: keep the hot path short.
    active = (
        execution_store.active_for_job(conn, job["id"])
        if spec.concurrency_policy != "allow"
        else []
    )
    if active and spec.concurrency_policy == "forbid":
        raise Conflict(
            f"job {spec.name!r} forbids concurrent runs and execution {active[0]['id']} "
            f"is {active[0]['status']}",
            code="already_running",
            details={"executionId": active[0]["id"]},
        )
    if active and spec.concurrency_policy == "replace":
        replaced = [(row["id"], _request_cancel(conn, row)) for row in active]
    row = queued_execution(
        execution_id=execution_id or new_id(),
        job={**job, "spec": stored_spec},
        trigger=request.trigger,
        parameters={**spec.parameters, **parameters},
        mode=mode,
        now=utcnow(),
        principal=request.principal,
        idempotency_key=idempotency_key,
        schedule_id=request.schedule_id,
        schedule_name=request.schedule_name,
        schedule_fire_at=request.schedule_fire_at,
        context=context,
    )
    if (
        plain is not None
        and spec.concurrency_policy == "allow"
        and execution_id is None
        and idempotency_key is None
    ):
        plain.append(row)
        return Started(Execution.from_row(row), True, replaced)
    try:
        execution_store.insert_execution(conn, row)
    except execution_store.DuplicateExecution:
        existing = (
            execution_store.find(conn, execution_id)
            if execution_id
            else execution_store.find_by_idempotency_key(conn, project["id"], idempotency_key or "")
        )
        if existing is None:
            raise
        return Started(*_replay(existing, job["id"], "executionId"))
    return Started(Execution.from_row(row), True, replaced)


def announce(rt: Runtime, started: Started) -> None:
    """Hand a committed new run to the dispatcher, and wake waiters of the runs it replaced."""
    if rt.dispatcher is None:
        return  # another process's sweeper finds the queued row
    for replaced_id, outcome in started.replaced:
        if outcome == Status.CANCELLED:
            rt.dispatcher.notify_final(replaced_id)
    rt.dispatcher.submit(started.execution.id)


def _replay(existing: dict[str, Any], job_id: str, what: str) -> tuple[Execution, bool]:
    if existing["job_id"] != job_id:
        raise Conflict(
            f"this {what} already names an execution of another job",
            code="execution_id_taken",
            details={"executionId": existing["id"]},
        )
    return Execution.from_row(existing), False


def _request_cancel(conn: Any, row: dict[str, Any]) -> str:
    """Cancel a queued run outright, ask a running one to stop. Returns the new status."""
    if row["status"] == Status.QUEUED and execution_store.transition(
        conn,
        row["id"],
        Status.CANCELLED,
        [Status.QUEUED],
        finished_at=utcnow(),
        error_code=ErrorCode.CANCELLED.value,
        error_message="cancelled on request",
    ):
        project = project_store.name_of(conn, row["project_id"])
        metrics.run_finished(project, row["job_name"], Status.CANCELLED.value, None)
        return Status.CANCELLED
    if execution_store.transition(conn, row["id"], Status.CANCELLING, [Status.RUNNING]):
        return Status.CANCELLING
    return execution_store.status_of(conn, row["id"]) or Status.CANCELLED


def cancel_in(conn: Connection, row: dict[str, Any]) -> str:
    """Cancel an active run inside the caller's write transaction; returns its new status.

    The caller wakes its waiters (dispatcher.notify_final) after the commit if it is final.
    """
    return _request_cancel(conn, row)


def get(rt: Runtime, execution_id: str) -> Execution:
    with rt.db.read() as conn:
        return Execution.from_row(execution_store.get(conn, execution_id))


async def wait(rt: Runtime, execution_id: str, timeout: float) -> Execution:
    """Wait up to `timeout` seconds (capped by settings) for the run to end; return it."""
    timeout = max(0.0, min(timeout, rt.settings.max_wait_seconds))
    if rt.dispatcher is not None and timeout > 0:
        await rt.dispatcher.wait(execution_id, timeout)
    return get(rt, execution_id)


def cancel(rt: Runtime, execution_id: str) -> Execution:
    with rt.db.write() as conn:
        row = execution_store.get(conn, execution_id)
        status = Status(row["status"])
        if status.is_final:
            if status == Status.CANCELLED:
                return Execution.from_row(row)
            raise Conflict(
                f"execution {execution_id} already ended {status.value}",
                code="already_finished",
                details={"status": status.value},
            )
        outcome = _request_cancel(conn, row)
        row = execution_store.get(conn, execution_id)
    if rt.dispatcher is not None and outcome == Status.CANCELLED:
        rt.dispatcher.notify_final(execution_id)
    return Execution.from_row(row)


def list_page(
    rt: Runtime,
    project_ref: str,
    *,
    job_ref: str | None = None,
    statuses: list[str] | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of Executions, newest first."""
    statuses = statuses or []
    unknown = sorted(set(statuses) - {s.value for s in Status})
    if unknown:
        raise Invalid(
            f"unknown status {unknown}; use {[s.value for s in Status]}", code="invalid_filter"
        )
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        job_id = job_store.get(conn, project["id"], job_ref)["id"] if job_ref else None
        page = execution_store.list_page(
            conn,
            project["id"],
            job_id=job_id,
            statuses=statuses,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
            limit=limit,
        )
    return Page([Execution.from_row(r) for r in page.items], page.next_cursor)


def logs(
    rt: Runtime,
    execution_id: str,
    *,
    after: int = 0,
    limit: int = 1000,
    iteration: int | None = None,
) -> tuple[list[LogLine], Status]:
    """Log lines after `after` (of one foreach item with `iteration`), and the execution's
    status when they were read."""
    with rt.db.read() as conn:
        row = execution_store.get(conn, execution_id)
        lines = log_store.read(conn, execution_id, after=after, limit=limit, iteration=iteration)
    return [LogLine.from_row(r) for r in lines], Status(row["status"])


def items(
    rt: Runtime,
    execution_id: str,
    *,
    after: int = -1,
    limit: int = 100,
    status: str | None = None,
) -> list[Item]:
    """A foreach run's items after index `after`, in order, optionally of one status."""
    if status is not None and status not in {s.value for s in ItemStatus}:
        raise Invalid(
            f"unknown item status {status!r}; use {[s.value for s in ItemStatus]}",
            code="invalid_filter",
        )
    with rt.db.read() as conn:
        execution_store.get(conn, execution_id)
        rows = item_store.page(conn, execution_id, after=after, limit=limit, status=status)
    return [Item.from_row(r) for r in rows]
