"""Iteration: a job's `foreach` (where its items come from, which ones, how they are paced
and retried), an item's states, and the summary a foreach run reports.

A foreach job runs its steps once per item. When the items are an earlier step's records
(`source.step`), that step and the steps it needs run once, first; every other step runs
per item. Templates of a per-item step see `item`, `iteration` ({index, attempt}),
`context` and `accumulator` beside the usual `params`, `mode`, `execution`, `job` and the
`steps` of the same item.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from jobport.domain.wire import Flag, Seconds, Wire, a_json_number

MAX_ITEMS = 100_000  # items one run may hold: they are stored, one row each
MAX_QUERY_CHARS = 8192  # Losant's queryJson limit, kept for every face
SOURCE_KINDS = ("items", "step", "sql", "http", "table")
RESOURCE_TYPES = ("dataTableRow", "device", "experienceGroup", "experienceUser")

# The MongoDB query operators mongoquery evaluates; anything else starting with $ is refused
# at definition time rather than failing every item at run time.
QUERY_OPERATORS = frozenset(
    {
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$and", "$or", "$nor",
        "$not", "$exists", "$type", "$regex", "$options", "$mod", "$all", "$size",
        "$elemMatch",
    }
)  # fmt: skip


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.TIMED_OUT)


class TableSource(Wire):
    """The rows of one table reached through a database connection (Losant's data table)."""

    connection: str = Field(min_length=1, max_length=200)
    table: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_$.]*$")


class Source(Wire):
    """Where the items come from: exactly one of `items`, `step`, `sql`, `http`, `table`.

    `path` names where the list is inside a step's result or an HTTP answer's body (dotted,
    e.g. "body.items"); by default a step's `records`, an HTTP body that is a list, or its
    `items`.
    """

    items: list[Any] | None = Field(default=None, max_length=MAX_ITEMS)
    step: str | None = None
    sql: dict[str, Any] | None = None  # a sql step's config: connection, query, parameters
    http: dict[str, Any] | None = None  # an http step's config
    table: TableSource | None = None
    path: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [k for k in SOURCE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "source needs exactly one of items, step, sql, http, table"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.path is not None and given[0] not in ("step", "http"):
            raise ValueError("path applies only to a step or http source")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SOURCE_KINDS if getattr(self, k) is not None)


Concurrency = Annotated[int, Field(ge=1, le=10), BeforeValidator(a_json_number)]
Retries = Annotated[int, Field(ge=1, le=5), BeforeValidator(a_json_number)]


class ForEach(Wire):
    """A job's iteration. Times are seconds, as everywhere in jobport's own model (the
    Losant face converts its milliseconds)."""

    source: Source
    query: dict[str, Any] | None = None  # a MongoDB-style filter (Losant's queryJson)
    concurrency: Concurrency = 1
    delay_seconds: Seconds = Field(default=0.0, ge=0, le=60)
    timeout_seconds: Seconds | None = Field(default=None, gt=0, le=86_400)
    retry_on_failure: Flag = False
    retry_on_timeout: Flag = False
    retries: Retries = 1  # more tries an item gets, when a retryOn flag says so
    retry_delay_seconds: Seconds = Field(default=0.0, ge=0, le=30)
    resource_type: Literal["dataTableRow", "device", "experienceGroup", "experienceUser"] | None = (
        None
    )

    @field_validator("query")
    @classmethod
    def _query_is_a_filter(cls, query: dict[str, Any] | None) -> dict[str, Any] | None:
        if query is not None:
            check_query(query)
        return query


MAX_REGEX_CHARS = 500  # a $regex is the caller's: kept short (it runs in the worker)
_LISTS = ("$in", "$nin", "$all")
_CLAUSES = ("$and", "$or", "$nor")


def check_query(query: Any) -> None:
    """ValueError unless `query` is a MongoDB-style filter mongoquery can evaluate: known
    operators with operands of the right shape, and each `$regex` a pattern that compiles.
    A query that passes never fails when a run applies it."""
    if not isinstance(query, dict):
        raise ValueError("query must be a JSON object (a MongoDB-style filter)")
    if len(json.dumps(query)) > MAX_QUERY_CHARS:
        raise ValueError(f"query is longer than {MAX_QUERY_CHARS} characters as JSON")
    _check_clause(query)


def _check_clause(clause: dict[str, Any]) -> None:
    for key, operand in clause.items():
        if key in _CLAUSES:
            if not isinstance(operand, list) or not operand:
                raise ValueError(f"{key} takes a non-empty list of conditions")
            for inner in operand:
                if not isinstance(inner, dict):
                    raise ValueError(f"each condition of {key} is an object")
                _check_clause(inner)
        elif key.startswith("$"):
            _check_operator(key, operand, clause)
        elif isinstance(operand, dict):
            _check_condition(operand)


def _check_condition(condition: dict[str, Any]) -> None:
    """A field's condition: operators (`{"$gt": 1}`), or a plain object to equal."""
    if not any(str(k).startswith("$") for k in condition):
        return  # an embedded document compared for equality
    for key, operand in condition.items():
        if not str(key).startswith("$"):
            raise ValueError(f"do not mix operators and fields in one condition ({key!r})")
        _check_operator(key, operand, condition)


def _check_operator(key: str, operand: Any, context: dict[str, Any]) -> None:
    if key not in QUERY_OPERATORS or key in _CLAUSES:
        raise ValueError(f"query operator {key!r} is not supported")
    if key in _LISTS and not isinstance(operand, list):
        raise ValueError(f"{key} takes a list")
    if key == "$regex":
        _check_regex(operand, context.get("$options", ""))
    elif key == "$options" and (
        not isinstance(operand, str) or not set(operand) <= set("imsx") or "$regex" not in context
    ):
        raise ValueError("$options goes with $regex and holds only i, m, s, x")
    elif key == "$not":
        if isinstance(operand, dict):
            _check_condition(operand)
        elif not isinstance(operand, str):
            raise ValueError("$not takes a condition or a regular expression")
        else:
            _check_regex(operand, "")
    elif key == "$exists" and not isinstance(operand, bool):
        raise ValueError("$exists takes true or false")
    elif key == "$size" and (isinstance(operand, bool) or not isinstance(operand, int)):
        raise ValueError("$size takes a whole number")
    elif key == "$mod" and not (
        isinstance(operand, list)
        and len(operand) == 2
        and all(isinstance(n, int | float) and not isinstance(n, bool) for n in operand)
        and operand[0] != 0
    ):
        raise ValueError("$mod takes [divisor, remainder], the divisor not 0")
    elif key == "$elemMatch":
        if not isinstance(operand, dict):
            raise ValueError("$elemMatch takes a condition")
        if any(str(k).startswith("$") for k in operand):
            _check_condition(operand)
        else:
            _check_clause(operand)
    elif (key == "$type" and not isinstance(operand, str | int)) or (
        isinstance(operand, bool) and (key == "$type")
    ):
        raise ValueError("$type takes a type name or number")


def _check_regex(pattern: Any, options: Any) -> None:
    if not isinstance(pattern, str):
        raise ValueError("$regex takes a string")
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"$regex is longer than {MAX_REGEX_CHARS} characters")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"$regex {pattern!r} does not compile: {exc}") from None


def once_steps(foreach: ForEach, needs: Mapping[str, list[str]]) -> set[str]:
    """The steps that run once before the items: a step source and what it needs."""
    if foreach.source.step is None:
        return set()
    found: set[str] = set()
    todo = [foreach.source.step]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(needs.get(name, []))
    return found


def summary(counts: Mapping[str, int], total: int) -> dict[str, int]:
    """Losant's executionSummary from item counts by status: what ended, what runs, what
    is left (pending or cancelled)."""
    succeeded = counts.get(ItemStatus.SUCCEEDED, 0)
    failed = counts.get(ItemStatus.FAILED, 0)
    timed_out = counts.get(ItemStatus.TIMED_OUT, 0)
    running = counts.get(ItemStatus.RUNNING, 0)
    return {
        "total": total,
        "succeeded": succeeded,
        "failed": failed,
        "timedOut": timed_out,
        "inProgress": running,
        "remaining": max(total - succeeded - failed - timed_out - running, 0),
    }


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a foreach run and how it went (attempts: tries that ended)."""

    index: int
    value: Any
    status: ItemStatus
    attempts: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Item:
        return cls(
            row["idx"],
            row["item"],
            ItemStatus(row["status"]),
            row["attempts"],
            row["started_at"],
            row["finished_at"],
            row["error"],
        )
