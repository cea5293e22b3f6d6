"""Losant's resource-job bodies (Resource Job Post, Patch, Execution Options), checked as its
schemas say, and the two-way mapping between a Losant resource job and a jobport job with
`foreach` (Losant's milliseconds are jobport's seconds; its JSON strings are objects here).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from jobport.domain.ids import object_id
from jobport.domain.iteration import check_query
from jobport.domain.jobs import Job
from jobport.domain.values import MAX_DEPTH, first_problem
from jobport.errors import Invalid

OBJECT_ID = re.compile(r"^[A-Fa-f\d]{24}$")
# Losant's second form of dataTableId: a template resolved against the execution's context.
_TEMPLATED_TABLE = re.compile(r".*{{.+}}.*", re.DOTALL)

RESOURCE_TYPES = ("dataTableRow", "device", "experienceGroup", "experienceUser")
ResourceType = Literal["dataTableRow", "device", "experienceGroup", "experienceUser"]

# What a job made through this face gets when Losant says nothing (Losant's own defaults:
# one at a time, no pause, a minute per iteration, no retries).
DEFAULTS = {
    "maxIterationConcurrency": 1,
    "iterationDelay": 0,
    "iterationTimeout": 60_000,
    "retryOnTimeout": False,
    "retryOnFailure": False,
    "maxIterationRetries": 1,
    "retryDelay": 0,
}
# The per-item step of a job made here: it shows each item in the run's log. Replace it
# natively (PATCH /api/v1/projects/{p}/jobs/{j} with `steps`) with the work to do per item.
DEFAULT_STEP = {
    "name": "item",
    "kind": "command",
    "config": {"command": "echo {{ item | tojson }}"},
}


# Losant's types and ranges, as its schemas give them (its `min`/`max` read as ranges, and
# maxIterationConcurrency's `enum: [1, 10]` as the range 1 to 10 its documentation states).
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
LongText = Annotated[StrictStr, Field(max_length=32767)]
QueryText = Annotated[StrictStr, Field(max_length=8192)]
Concurrency = Annotated[StrictInt, Field(ge=1, le=10)]
DelayMs = Annotated[StrictInt, Field(ge=0, le=60_000)]
TimeoutMs = Annotated[StrictInt, Field(ge=60_000, le=900_000)]
Retries = Annotated[StrictInt, Field(ge=1, le=5)]
RetryDelayMs = Annotated[StrictInt, Field(ge=0, le=30_000)]


class _Body(BaseModel):
    """additionalProperties false, and no null where Losant's schema says a type."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(f"{nulls[0]} must not be null")
        return data


# Field names are Losant's, as its clients send them.
class _Fields(_Body):
    """The fields a resource job's Post and Patch share."""

    name: Name | None = None
    description: LongText | None = None
    dataTableId: StrictStr | None = None
    queryJson: QueryText | None = None
    maxIterationConcurrency: Concurrency | None = None
    iterationDelay: DelayMs | None = None
    iterationTimeout: TimeoutMs | None = None
    defaultContext: LongText | None = None
    retryOnTimeout: StrictBool | None = None
    retryOnFailure: StrictBool | None = None
    maxIterationRetries: Retries | None = None
    retryDelay: RetryDelayMs | None = None


class ResourceJobPost(_Fields):
    name: Name
    resourceType: ResourceType


class ResourceJobPatch(_Fields):
    """The Patch schema: what Post has but `resourceType`, which never changes."""


class ExecutionOptions(_Body):
    templateContext: LongText | None = None
    queryJson: QueryText | None = None
    dataTableId: StrictStr | None = None


def refuse(field: str, reason: str) -> Invalid:
    """A 400 in Losant's shape (the face's shaper turns every Invalid into one)."""
    return Invalid(
        f"{field} {reason}", code="invalid_request", details=[{"field": field, "reason": reason}]
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def json_object(field: str, text: str) -> dict[str, Any]:
    """A Losant JSON-string field (defaultContext, templateContext, queryJson) as the object
    it holds, refused as a JSON body is (api/guard.py): strict JSON (no NaN or Infinity),
    nested at most MAX_DEPTH levels, with no text that a store cannot keep."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise refuse(field, f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # not JSON, NaN or Infinity, an integer of thousands of digits
        reason = str(exc) if "JSON number" in str(exc) else "must be a string of JSON"
        raise refuse(field, reason) from None
    if not isinstance(value, dict):
        raise refuse(field, "must be a JSON object")
    problem = first_problem(value)
    if problem is not None:
        _, where, reason = problem
        raise refuse(field, f"{reason} (at {where})")
    return value


def query(text: str) -> dict[str, Any]:
    """queryJson as the MongoDB-style filter it holds, refused unless jobport can run it."""
    value = json_object("queryJson", text)
    try:
        check_query(value)
    except ValueError as exc:
        raise refuse("queryJson", str(exc)) from None
    return value


def check_data_table_id(value: str) -> str:
    """A dataTableId as Losant's schema has it (24 hex); its templated form is refused."""
    if OBJECT_ID.fullmatch(value):
        return value.lower()
    if 4 <= len(value) <= 255 and _TEMPLATED_TABLE.fullmatch(value):
        raise refuse(
            "dataTableId",
            "is a template, which jobport does not resolve: give the table's 24-hex id",
        )
    raise refuse("dataTableId", "must be a 24-hex id")


def _seconds(ms: int) -> float | int:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def foreach_changes(body: _Fields) -> dict[str, Any]:
    """The foreach fields (camelCase, seconds) that `body`'s Losant fields set."""
    given = body.model_fields_set
    out: dict[str, Any] = {}
    if "queryJson" in given and body.queryJson is not None:
        out["query"] = query(body.queryJson)
    if "maxIterationConcurrency" in given:
        out["concurrency"] = body.maxIterationConcurrency
    for losant, native in (
        ("iterationDelay", "delaySeconds"),
        ("iterationTimeout", "timeoutSeconds"),
        ("retryDelay", "retryDelaySeconds"),
    ):
        if losant in given:
            out[native] = _seconds(getattr(body, losant))
    for flag in ("retryOnTimeout", "retryOnFailure"):
        if flag in given:
            out[flag] = getattr(body, flag)
    if "maxIterationRetries" in given:
        out["retries"] = body.maxIterationRetries
    return out


def new_definition(body: ResourceJobPost, source: dict[str, Any]) -> dict[str, Any]:
    """The jobport job a Losant Post makes: one default per-item step over `source`."""
    foreach: dict[str, Any] = {
        "source": source,
        "concurrency": DEFAULTS["maxIterationConcurrency"],
        "delaySeconds": 0,
        "timeoutSeconds": _seconds(DEFAULTS["iterationTimeout"]),
        "resourceType": body.resourceType,
        **foreach_changes(body),
    }
    definition: dict[str, Any] = {
        "name": body.name,
        "description": body.description or "",
        "steps": [DEFAULT_STEP],
        "foreach": foreach,
    }
    if body.defaultContext is not None:
        definition["context"] = json_object("defaultContext", body.defaultContext)
    return definition


def resource_type(foreach: dict[str, Any]) -> str:
    """The Losant resource type of a foreach: as given, else what its source is (a table's
    rows, or `device` for any other source a job was given natively)."""
    given = foreach.get("resourceType")
    if given in RESOURCE_TYPES:
        return str(given)
    return "dataTableRow" if (foreach.get("source") or {}).get("table") else "device"


def data_table_id(project_id: str, foreach: dict[str, Any]) -> str | None:
    table = (foreach.get("source") or {}).get("table")
    if not table:
        return None
    return object_id(f"{project_id}/{table['connection']}/{table['table']}")


def iteration_fields(foreach: dict[str, Any]) -> dict[str, Any]:
    """Losant's pacing and retry fields (milliseconds) of a stored foreach (seconds)."""
    out = {
        "maxIterationConcurrency": foreach.get("concurrency", 1),
        "iterationDelay": _ms(foreach.get("delaySeconds", 0)),
        "retryOnTimeout": bool(foreach.get("retryOnTimeout", False)),
        "retryOnFailure": bool(foreach.get("retryOnFailure", False)),
        "maxIterationRetries": foreach.get("retries", 1),
        "retryDelay": _ms(foreach.get("retryDelaySeconds", 0)),
    }
    timeout = _ms(foreach.get("timeoutSeconds"))
    if timeout is not None:  # a job made natively may have none
        out["iterationTimeout"] = timeout
    return out


def query_json(foreach: dict[str, Any]) -> str:
    return json.dumps(foreach.get("query") or {}, separators=(",", ":"))


def render_job(job: Job, ts: Any) -> dict[str, Any]:
    """A jobport job with foreach as Losant's Resource Job."""
    foreach = job.definition["foreach"]
    oid = object_id(job.id)
    out: dict[str, Any] = {
        "id": oid,
        "resourceJobId": oid,
        "applicationId": object_id(job.project_id),
        "name": job.name,
        "description": job.definition.get("description", ""),
        "resourceType": resource_type(foreach),
        "queryJson": query_json(foreach),
        **iteration_fields(foreach),
        "defaultContext": json.dumps(job.definition.get("context") or {}, separators=(",", ":")),
        "creationDate": ts(job.created_at),
        "lastUpdated": ts(job.updated_at),
    }
    table = data_table_id(job.project_id, foreach)
    if table is not None:
        out["dataTableId"] = table
    if job.last_execution is not None:
        out["lastExecutionRequested"] = ts(job.last_execution.created_at)
    return out
