"""Executions: the state machine, triggers, the records of a run and its log, results."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobport.domain.values import clean


class Status(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT})
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.CANCELLING})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED}),
    # running → queued: a foreach run whose worker died resumes (engine/lifecycle._resume).
    Status.RUNNING: frozenset(
        {
            Status.SUCCEEDED,
            Status.FAILED,
            Status.CANCELLING,
            Status.TIMED_OUT,
            Status.CANCELLED,
            Status.QUEUED,
        }
    ),
    Status.CANCELLING: frozenset({Status.CANCELLED, Status.FAILED, Status.TIMED_OUT}),
}


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def sources_of(target: Status) -> frozenset[Status]:
    """Every status from which `target` may be reached: the WHERE of a compare-and-set."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


class Trigger(enum.StrEnum):
    API = "api"
    SCHEDULE = "schedule"
    CONSOLE = "console"
    RETRY = "retry"


class Mode(enum.StrEnum):
    FULL = "full"
    DELTA = "delta"


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class ErrorCode(enum.StrEnum):
    STEP_FAILED = "step_failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"
    ITEMS_FAILED = "items_failed"  # a foreach run: some items failed or timed out
    ITEMS_UNAVAILABLE = "items_unavailable"  # a foreach run's source gave no list
    TEMPLATE_ERROR = "template_error"
    INTERNAL = "internal_error"


@dataclass(frozen=True, slots=True)
class StartRequest:
    """What an execution is started with: the caller's choices, and what started it (an API
    call, or a schedule's fire)."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    mode: str = Mode.FULL.value
    execution_id: str | None = None
    idempotency_key: str | None = None
    trigger: Trigger = Trigger.API
    principal: str | None = None
    schedule_id: str | None = None
    schedule_name: str | None = None
    schedule_fire_at: dt.datetime | None = None
    # The template context (`{{ context.x }}`), over the job's `context` defaults.
    context: Mapping[str, Any] | None = None
    # For a foreach job, this run's `query` and/or `source` instead of the job's.
    foreach: Mapping[str, Any] | None = None


def initial_step_states(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a stored (camelCase) job definition, pending."""
    return [
        {
            "name": s["name"],
            "status": StepStatus.PENDING.value,
            "startedAt": None,
            "finishedAt": None,
            "error": None,
        }
        for s in spec["steps"]
    ]


def queued_execution(
    *,
    execution_id: str,
    job: dict[str, Any],
    trigger: Trigger,
    parameters: dict[str, Any],
    mode: str,
    now: dt.datetime,
    not_before: dt.datetime | None = None,
    principal: str | None = None,
    idempotency_key: str | None = None,
    attempt: int = 1,
    retry_of: str | None = None,
    schedule_id: str | None = None,
    schedule_name: str | None = None,
    schedule_fire_at: dt.datetime | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of a new, queued execution of `job` (a stored job row, spec included).

    A run started by a schedule names it and the nominal fire time it stands for.
    """
    return {
        "id": execution_id,
        "project_id": job["project_id"],
        "job_id": job["id"],
        "job_name": job["name"],
        "status": Status.QUEUED.value,
        "trigger": trigger.value,
        "parameters": parameters,
        "mode": mode,
        "principal": principal,
        "idempotency_key": idempotency_key,
        "attempt": attempt,
        "retry_of": retry_of,
        "spec": job["spec"],
        "steps": initial_step_states(job["spec"]),
        "result": None,
        "error_code": None,
        "error_message": None,
        "worker": None,
        "created_at": now,
        "not_before": not_before or now,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "log_lines": 0,
        "log_bytes": 0,
        "schedule_id": schedule_id,
        "schedule_name": schedule_name,
        "schedule_fire_at": schedule_fire_at,
        "context": context,
        "iteration": None,
        "logs_pruned_at": None,
    }


# Stored values to members by plain dict lookups: Status(value) costs ~10 times as much, and
# an execution record is built on every execute.
_STATUS = {s.value: s for s in Status}
_TRIGGER = {t.value: t for t in Trigger}
_MODE = {m.value: m for m in Mode}


@dataclass(frozen=True, slots=True)
class ExecutionError:
    """Why a run did not succeed: an ErrorCode value and a message (either may be None)."""

    code: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class FiredBy:
    """The schedule fire a run stands for: the schedule and the nominal time it fired at."""

    schedule_id: str
    schedule_name: str | None
    fire_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of a job, as the services hand it out. Times are aware UTC (the store hands
    them back so); parameters, steps and result stay the plain JSON values stored."""

    id: str
    project_id: str
    job_id: str
    job_name: str
    status: Status
    trigger: Trigger
    parameters: dict[str, Any]
    mode: Mode
    attempt: int
    retry_of: str | None
    principal: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    steps: list[dict[str, Any]]  # [{name, status, startedAt, finishedAt, error}], camelCase
    result: Any
    error: ExecutionError | None
    log_lines: int
    schedule: FiredBy | None
    context: dict[str, Any] | None = None  # the template context it was started with
    # A foreach run's summary (domain/iteration.summary, plus "accumulator"); else None.
    iteration: dict[str, Any] | None = None
    # When retention removed its log lines (the run stays; log_lines says how many it had).
    logs_pruned_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Execution:
        """From a stored row (or queued_execution()'s). Positional: this runs per execute."""
        code, message = row.get("error_code"), row.get("error_message")
        schedule_id = row.get("schedule_id")
        return cls(
            row["id"],
            row["project_id"],
            row["job_id"],
            row["job_name"],
            _STATUS[row["status"]],
            _TRIGGER[row["trigger"]],
            row["parameters"],
            _MODE[row["mode"]],
            row["attempt"],
            row["retry_of"],
            row["principal"],
            row["created_at"],
            row["started_at"],
            row["finished_at"],
            row["steps"],
            row["result"],
            ExecutionError(code, message) if code or message else None,
            row["log_lines"],
            FiredBy(schedule_id, row.get("schedule_name"), row.get("schedule_fire_at"))
            if schedule_id
            else None,
            row.get("context"),
            row.get("iteration"),
            row.get("logs_pruned_at"),
        )


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a run logged; `seq` orders a run's lines and is the cursor to read after."""

    seq: int
    at: dt.datetime
    step: str | None
    stream: str
    level: str
    text: str
    iteration: int | None = None  # the foreach item it belongs to

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LogLine:
        return cls(
            row["seq"],
            row["at"],
            row["step"],
            row["stream"],
            row["level"],
            row["text"],
            row.get("iteration"),
        )


def retry_delay(attempt: int, base_seconds: float, backoff: float) -> float:
    """Seconds to wait before attempt `attempt + 1`, growing by `backoff` each time."""
    return base_seconds * (backoff ** max(attempt - 1, 0))


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (dt.datetime, "datetime"),
    (dt.date, "date"),
    (dict, "object"),
    (list, "array"),
)


def _type_name(value: Any) -> str:
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return "string"


def _merge_types(a: str | None, b: str) -> str:
    if a is None or a == b:
        return b
    if {a, b} == {"integer", "number"}:
        return "number"
    return "string"


def infer_schema(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Columns in first-seen order, each typed by the values it holds (nulls ignored)."""
    types: dict[str, str | None] = {}
    for record in records:
        for key, value in record.items():
            current = types.get(key)
            types[key] = current if value is None else _merge_types(current, _type_name(value))
            types.setdefault(key, None)
    return [{"name": k, "type": t or "string"} for k, t in types.items()]


def to_result(value: Any) -> Any:
    """Normalise a step's return value into an execution result.

    A list of objects becomes records with an inferred schema; an object that already has
    `schema` and `records` is taken as is; anything else is kept unchanged.
    """
    value = clean(value)  # a step may return anything; keep what both stores can hold
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return {"schema": infer_schema(value), "records": value}
    return value


def drop_schema(result: Any) -> Any:
    if isinstance(result, dict) and "records" in result and "schema" in result:
        return {k: v for k, v in result.items() if k != "schema"}
    return result
