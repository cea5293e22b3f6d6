"""Jobs and steps: the definition a user writes, its validation, and the stored record."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from jobport.domain import parameters
from jobport.domain.executions import Execution
from jobport.domain.iteration import ForEach, once_steps
from jobport.domain.retention import Retention
from jobport.domain.wire import Count, Flag, Seconds, Wire, a_json_number

if TYPE_CHECKING:  # only named: a job's record need not load the schedules package
    from jobport.domain.schedules import Schedule

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,199}$"
_NAME_RE = re.compile(NAME_PATTERN)
# A queue name every broker takes as it is (Redis keys, RabbitMQ queue names).
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class Step(Wire):
    name: str = Field(pattern=NAME_PATTERN)
    kind: str
    config: dict[str, Any] = Field(default_factory=dict)
    needs: list[str] = Field(default_factory=list)
    timeout_seconds: Seconds | None = Field(default=None, gt=0)
    retries: Count = Field(default=0, ge=0, le=100)
    retry_delay_seconds: Seconds = Field(default=1.0, ge=0)
    continue_on_error: Flag = False
    result: Flag = False


class JobSpec(Wire):
    """A job definition, exactly as it is accepted over the API and in job files."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameters_schema: dict[str, Any] | None = None
    steps: list[Step] = Field(min_length=1, max_length=500)
    timeout_seconds: Seconds | None = Field(default=None, gt=0)
    retries: Count = Field(default=0, ge=0, le=100)
    retry_delay_seconds: Seconds = Field(default=10.0, ge=0)
    retry_backoff: Seconds = Field(default=2.0, ge=1.0)
    concurrency_policy: Literal["allow", "forbid", "replace"] = "allow"
    max_concurrent: Annotated[int, Field(ge=1), BeforeValidator(a_json_number)] | None = None
    # The Celery queue its runs go to (JOBPORT_EXECUTOR=celery; `jobport worker --queues`).
    queue: str = Field(default="default", pattern=QUEUE_PATTERN)
    labels: dict[str, str] = Field(default_factory=dict)
    # Run the steps once per item (domain/iteration.py); None: once per execution.
    foreach: ForEach | None = None
    # The template context's defaults (`{{ context.x }}`); a start may give more over them.
    context: dict[str, Any] = Field(default_factory=dict)
    # How long its ended runs and their logs are kept, over the server's JOBPORT_RETENTION_*
    # (domain/retention.py); None: the server's.
    retention: Retention | None = None

    @field_validator("steps")
    @classmethod
    def _steps_form_a_dag(cls, steps: list[Step]) -> list[Step]:
        check_step_graph(steps)
        return steps

    @field_validator("parameters_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            parameters.check_schema(schema)
        return schema

    @model_validator(mode="after")
    def _defaults_meet_the_schema(self) -> JobSpec:
        if self.parameters_schema is not None:
            parameters.check_defaults(self.parameters_schema, self.parameters)
        return self

    def parameter_problems(self, given: dict[str, Any]) -> list[dict[str, str]]:
        """What is wrong with a caller's parameters; empty when they may run (see
        domain/parameters.py)."""
        return parameters.problems(self.parameters, self.parameters_schema, given)

    @model_validator(mode="after")
    def _foreach_fits_the_steps(self) -> JobSpec:
        if self.foreach is None:
            return self
        names = {s.name for s in self.steps}
        source = self.foreach.source.step
        if source is not None and source not in names:
            raise ValueError(f"foreach.source.step {source!r} is not a step of this job")
        if not names - self.once_steps():
            raise ValueError(
                f"every step runs once before the items (foreach.source.step {source!r} and "
                "what it needs): add a step to run per item"
            )
        return self

    def once_steps(self) -> set[str]:
        """The steps a foreach run runs once, before its items (empty without foreach)."""
        if self.foreach is None:
            return set()
        return once_steps(self.foreach, {s.name: s.needs for s in self.steps})

    @model_validator(mode="after")
    def _one_result_step(self) -> JobSpec:
        marked = [s.name for s in self.steps if s.result]
        if len(marked) > 1:
            raise ValueError(f"only one step may be marked result: true, got {marked}")
        return self


def check_step_graph(steps: list[Step]) -> None:
    """Raise ValueError unless step names are unique and `needs` form an acyclic graph."""
    names: set[str] = set()
    for step in steps:
        if step.name in names:
            raise ValueError(f"step name {step.name!r} is used twice")
        names.add(step.name)
    for step in steps:
        for need in step.needs:
            if need not in names:
                raise ValueError(f"step {step.name!r} needs {need!r}, which is not a step")
            if need == step.name:
                raise ValueError(f"step {step.name!r} needs itself")
    order = topological_order(steps)
    if len(order) != len(steps):
        stuck = sorted(names - set(order))
        raise ValueError(f"steps {stuck} form a cycle through their needs")


def topological_order(steps: list[Step]) -> list[str]:
    """Step names in an order where every step comes after what it needs (stable)."""
    remaining = {s.name: set(s.needs) for s in steps}
    order: list[str] = []
    while True:
        ready = [s.name for s in steps if s.name in remaining and not remaining[s.name]]
        if not ready:
            return order
        for name in ready:
            order.append(name)
            del remaining[name]
        for needs in remaining.values():
            needs.difference_update(ready)


def result_step(spec: JobSpec) -> str:
    """The step whose result is the execution's result: the marked one, else the last."""
    for step in spec.steps:
        if step.result:
            return step.name
    return spec.steps[-1].name


def is_valid_name(name: str) -> bool:
    return bool(_NAME_RE.match(name))


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job: its definition, the newest run, and (when read one by one) schedules.

    `definition` is the job as written and stored (camelCase JSON) and is shown as is: a read
    never rewrites what was written. `spec` is that definition parsed, on first use: a listing
    does not pay for validating every job, and a read never fails on one.
    """

    id: str
    project_id: str
    name: str
    definition: dict[str, Any]
    created_at: dt.datetime  # aware UTC, as the store hands every time back
    updated_at: dt.datetime
    last_execution: Execution | None = None
    schedules: tuple[Schedule, ...] | None = None  # None: not read (a listing, a create)
    _spec: JobSpec | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        *,
        last_execution: Execution | None = None,
        schedules: tuple[Schedule, ...] | None = None,
        spec: JobSpec | None = None,
    ) -> Job:
        """From a stored job row; `spec` when the caller parsed the definition already."""
        return cls(
            row["id"],
            row["project_id"],
            row["name"],
            row["spec"],
            row["created_at"],
            row["updated_at"],
            last_execution,
            schedules,
            spec,
        )

    @property
    def spec(self) -> JobSpec:
        """The definition as a JobSpec, validated once and kept."""
        if self._spec is None:
            # A cache, not state: frozen keeps callers from changing the record.
            object.__setattr__(self, "_spec", JobSpec.model_validate(self.definition))
        return self._spec  # type: ignore[return-value]
