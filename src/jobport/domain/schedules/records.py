"""Records of a stored schedule and of one of its fires, as the services hand them out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jobport.domain.schedules.spec import ScheduleSpec

State = Literal["active", "disabled", "inactive", "ended"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule and where it stands. Times are aware UTC (the store hands them back
    so). `definition` is the schedule as written and stored (the camelCase PUT body, named):
    shown as is, a read never rewrites what was written."""

    id: str
    project_id: str
    job_id: str
    name: str
    definition: dict[str, Any]
    enabled: bool
    next_fire_at: dt.datetime | None
    last_fire_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    state: State
    time_zone_iana: str  # the zone the definition names (IANA or Windows), as its IANA name

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Schedule:
        """From a stored schedule row, with its state and IANA zone worked out."""
        spec = ScheduleSpec.model_validate(row["spec"])
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            job_id=row["job_id"],
            name=row["name"],
            definition=row["spec"],
            enabled=row["enabled"],
            next_fire_at=row["next_fire_at"],
            last_fire_at=row["last_fire_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            state=_state(row, spec),
            time_zone_iana=spec.timetable().iana,
        )


def _state(row: Mapping[str, Any], spec: ScheduleSpec) -> State:
    """active, disabled, inactive (a one-time schedule that fired) or ended."""
    if not row["enabled"]:
        return "disabled"
    if row["next_fire_at"] is not None:
        return "active"
    if spec.run_at is not None and row["last_fire_at"] is not None:
        return "inactive"
    return "ended"


@dataclass(frozen=True, slots=True)
class ScheduleFire:
    """One recorded fire of a schedule: a nominal time it fired at, and what came of it."""

    id: str
    schedule_id: str
    fire_at: dt.datetime  # aware UTC: the nominal time, unique per schedule
    local: str  # the same instant in the schedule's zone, ISO 8601 with its offset
    dst: str | None  # None, "shifted" (out of a DST gap) or "repeated" (an ambiguous wall time)
    kind: Literal["schedule", "trigger", "backfill"]
    outcome: Literal["started", "buffered", "skipped", "missed"]
    reason: str | None  # why it was skipped or missed (or why a buffered fire started late)
    execution_id: str | None  # the run it started, if it started one
    recorded_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScheduleFire:
        """From a stored fire row (or one firing is about to store)."""
        return cls(
            id=row["id"],
            schedule_id=row["schedule_id"],
            fire_at=row["fire_at"],
            local=row["local"],
            dst=row["dst"],
            kind=row["kind"],
            outcome=row["outcome"],
            reason=row["reason"],
            execution_id=row["execution_id"],
            recorded_at=row["recorded_at"],
        )
