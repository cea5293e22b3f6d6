"""Wire shapes of v1: request models and the renderers of stored rows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from jobport.domain.pages import Page
from jobport.services.runtime import Runtime


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


DESCRIPTION_MAX = 10_000  # characters, for every description a caller writes


class ProjectCreate(Body):
    name: str
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class ProjectPatch(Body):
    name: str | None = None
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class ExecuteRequest(Body):
    parameters: dict[str, Any] = Field(default_factory=dict)
    mode: str = "full"
    execution_id: str | None = None


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _not_a_number(value: Any) -> Any:
    """A date-time is written as one (ISO 8601); pydantic would read 0.5 as a Unix time."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
    ):
        raise ValueError("must be a date-time such as 2026-11-30T09:00:00Z, not a number")
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("out of range: in UTC it must fall within the years 1 to 9999") from None


# Every date-time a caller sends (query or body): read as UTC when it has no offset, and in
# range once in UTC, so the store never meets one it cannot convert (a 422 names the field).
UtcDateTime = Annotated[dt.datetime, BeforeValidator(_not_a_number), AfterValidator(_utc)]
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def project(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "createdAt": ts(row["created_at"]),
        "updatedAt": ts(row["updated_at"]),
    }


def execution(row: dict[str, Any], *, with_result: bool = True) -> dict[str, Any]:
    error = (
        {"code": row["error_code"], "message": row["error_message"]}
        if row.get("error_code") or row.get("error_message")
        else None
    )
    out = {
        "id": row["id"],
        "jobId": row["job_id"],
        "jobName": row["job_name"],
        "projectId": row["project_id"],
        "status": row["status"],
        "trigger": row["trigger"],
        "parameters": row["parameters"],
        "mode": row["mode"],
        "attempt": row["attempt"],
        "retryOf": row["retry_of"],
        "principal": row["principal"],
        "createdAt": ts(row["created_at"]),
        "startedAt": ts(row["started_at"]),
        "finishedAt": ts(row["finished_at"]),
        "steps": row["steps"],
        "result": row["result"] if with_result else None,
        "error": error,
        "logLines": row["log_lines"],
        "schedule": (
            {"name": row["schedule_name"], "fireAt": ts(row["schedule_fire_at"])}
            if row.get("schedule_id")
            else None
        ),
    }
    return out


def job(row: dict[str, Any]) -> dict[str, Any]:
    last = row.get("last_execution")
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        **row["spec"],
        "createdAt": ts(row["created_at"]),
        "updatedAt": ts(row["updated_at"]),
        "lastExecution": execution(last, with_result=False) if last else {},
        **(
            {"schedules": [schedule_summary(s) for s in row["schedules"]]}
            if "schedules" in row
            else {}
        ),
    }


def schedule_summary(schedule: Any) -> dict[str, Any]:
    """Only until the job renderer imports api/v1/schedules.py's schedule_summary itself."""
    # Imported here: api/v1/schedules.py imports this module.
    from jobport.api.v1.schedules import schedule_summary

    return schedule_summary(schedule)


def log_line(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "at": ts(row["at"]),
        "step": row["step"],
        "stream": row["stream"],
        "level": row["level"],
        "text": row["text"],
    }


def page(p: Page, render: Any) -> dict[str, Any]:
    return {"items": [render(r) for r in p.items], "nextCursor": p.next_cursor}
