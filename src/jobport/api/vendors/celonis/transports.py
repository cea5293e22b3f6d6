"""Celonis's JSON shapes for jobport's records: its status words, its transports (a job, a
pool, an execution item, a log message), its two error shapes, and its ExtractionMode."""

from __future__ import annotations

import math
from typing import Any

from jobport.api import errors
from jobport.api.v1 import wire
from jobport.domain.executions import FINAL_STATUSES, Execution, LogLine, Status, StepStatus
from jobport.domain.ids import new_id
from jobport.domain.jobs import Job
from jobport.domain.projects import Project
from jobport.errors import Invalid

_MODES = {"FULL": "full", "DELTA": "delta"}

# Celonis's ExecutionStatus for jobport's. A run being cancelled is still running; a run
# ended by its timeout failed. SKIPPED is a step that never ran in a run that has ended.
STATUS = {
    Status.QUEUED: "QUEUED",
    Status.RUNNING: "RUNNING",
    Status.CANCELLING: "RUNNING",
    Status.SUCCEEDED: "SUCCESS",
    Status.FAILED: "FAIL",
    Status.TIMED_OUT: "FAIL",
    Status.CANCELLED: "CANCEL",
}
STEP_STATUS = {
    StepStatus.PENDING.value: "QUEUED",
    StepStatus.RUNNING.value: "RUNNING",
    StepStatus.SUCCEEDED.value: "SUCCESS",
    StepStatus.FAILED.value: "FAIL",
    StepStatus.TIMED_OUT.value: "FAIL",
    StepStatus.CANCELLED.value: "CANCEL",
    StepStatus.SKIPPED.value: "SKIPPED",
}
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# --- errors ----------------------------------------------------------------------------------


def celonis_error(refusal: errors.Refusal) -> tuple[int, Any]:
    """Celonis answers a field's problem with a ValidationExceptionDescriptor (400) and any
    other error with an ExceptionReference: `{reference, message, shortMessage}`."""
    status = 400 if refusal.status == 422 else refusal.status
    details = refusal.details
    if status == 400 and isinstance(details, list) and details:
        return status, {
            "errors": [
                {
                    "attribute": d.get("field") if isinstance(d, dict) else None,
                    "error": d.get("reason") if isinstance(d, dict) else str(d),
                    "errorCode": refusal.code.upper(),
                    "additionalInfo": refusal.message,
                }
                for d in details
            ]
        }
    return status, {"reference": new_id(), "message": refusal.message, "shortMessage": refusal.code}


def oauth_error(refusal: errors.Refusal) -> tuple[int, Any]:
    """The token endpoint answers as OAuth 2.0 does (RFC 6749, section 5.2)."""
    status = 400 if refusal.status == 422 else refusal.status
    code = "invalid_request" if status in (400, 405, 413, 415) else refusal.code
    return status, {"error": code, "error_description": refusal.message}


def invalid(field: str, reason: str, message: str, code: str = "invalid_request") -> Invalid:
    return Invalid(message, code=code, details=[{"field": field, "reason": reason}])


def extraction_mode(value: str | None) -> str:
    """jobport's mode for Celonis's ExtractionMode (FULL or DELTA, as Celonis spells it)."""
    if value is None:
        raise invalid("mode", "required: FULL or DELTA", "mode is required: FULL or DELTA")
    if value not in _MODES:
        raise invalid(
            "mode",
            "must be FULL or DELTA",
            f"mode must be FULL or DELTA, not {value!r}",
            code="invalid_mode",
        )
    return _MODES[value]


# --- transports ------------------------------------------------------------------------------


def status_word(execution: Execution | None) -> str | None:
    return STATUS[execution.status] if execution is not None else None


def render_job(job: Job) -> dict[str, Any]:
    """A job as Celonis's JobTransport: its newest run's status and id."""
    last = job.last_execution
    return {
        "id": job.id,
        "name": job.name,
        "dataPoolId": job.project_id,
        "dataSourceId": None,
        "timeStamp": wire.ts(job.updated_at),
        "status": status_word(last),
        "currentExecutionId": last.id if last else None,
        "dagBasedExecutionEnabled": False,
        "latestExecutionItemId": last.id if last else None,
    }


def render_pool(project: Project) -> dict[str, Any]:
    """A project as Celonis's DataPoolTransport."""
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "timeStamp": wire.ts(project.updated_at),
        "configurationStatus": "CONFIGURED",
        "locked": False,
        "permissions": [],
        "tags": [],
    }


def _item(execution: Execution, pool: Project, **fields: Any) -> dict[str, Any]:
    """An ExecutionItemTransport of the execution; `fields` make it a task's."""
    fired = execution.schedule
    return {
        "id": execution.id,
        "poolId": pool.id,
        "poolName": pool.name,
        "executionId": execution.id,
        "schedulingId": fired.schedule_id if fired else None,
        "jobId": execution.job_id,
        "taskId": None,
        "stepId": None,
        "name": execution.job_name,
        "status": STATUS[execution.status],
        "dataPoolVersion": None,
        "startDate": wire.ts(execution.started_at),
        "endDate": wire.ts(execution.finished_at),
        "type": "JOB",
        "mode": execution.mode.upper(),
        "schedulingName": fired.schedule_name if fired else None,
        "executionOrder": None,
        "monitored": False,
        **fields,
    }


def render_job_item(execution: Execution, pool: Project) -> dict[str, Any]:
    return _item(execution, pool)


def render_task_items(execution: Execution, pool: Project) -> list[dict[str, Any]]:
    """One TASK item per step: Celonis's tasks of a data job are jobport's steps."""
    ended = execution.status in FINAL_STATUSES
    items = []
    for order, step in enumerate(execution.steps):
        status = STEP_STATUS.get(step.get("status"), "QUEUED")
        if status == "QUEUED" and ended:
            status = "SKIPPED"  # the run ended before this step started
        items.append(
            _item(
                execution,
                pool,
                id=task_item_id(execution.id, step["name"]),
                taskId=step["name"],
                name=step["name"],
                status=status,
                startDate=step.get("startedAt"),
                endDate=step.get("finishedAt"),
                type="TASK",
                executionOrder=order,
            )
        )
    return items


def task_item_id(execution_id: str, step: str) -> str:
    return f"{execution_id}:{step}"


def render_log_line(execution_id: str, line: LogLine) -> dict[str, Any]:
    """A LogMessageTransport."""
    level = line.level.upper()
    return {
        "id": f"{execution_id}:{line.seq}",
        "executionItemId": task_item_id(execution_id, line.step) if line.step else execution_id,
        "level": level if level in LEVELS else "INFO",
        "date": wire.ts(line.at),
        "logMessage": line.text,
        "logTranslationCode": None,
        "logTranslationParameters": [],
    }


def pages(total: int, limit: int) -> int:
    return math.ceil(total / limit)
