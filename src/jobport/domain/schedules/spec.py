"""The schedule spec: the wire model a user writes (ScheduleSpec, DstPolicy) and its compiling."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jobport.domain.schedules.crons import check_cron
from jobport.domain.schedules.timetable import Timetable
from jobport.domain.schedules.zones import resolve_time_zone
from jobport.domain.wire import Flag, Seconds, Wire

# startDate, endDate and runAt are wall times in the schedule's zone: an offset would say
# another zone's time, so one is refused rather than silently converted.
_LOCAL_FORMAT = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"
_LOCAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_WITH_OFFSET = re.compile(r".*T.*([+-]\d{2}:?\d{2}|Z)$", re.IGNORECASE)
_TICK = timedelta(microseconds=1)
# The widest catch-up window: ten years. A wider one (or infinity) would overflow the date
# arithmetic of the first fire and stop the schedule; this one already means "every fire".
MAX_CATCHUP_WINDOW = 10 * 366 * 86_400
# Loome's documented "Add or Update Schedule" body spells timeZone in lower case: the same
# field under a second name, so a team's existing scripts work as written.
TIME_ZONE_ALIAS = "timezone"


def parse_local(text: str, *, end_of_day: bool = False, need_time: bool = False) -> datetime:
    """A naive local datetime from a date or a date-time without offset.

    A date alone is midnight, or the last instant of that day with `end_of_day`.
    """
    if _WITH_OFFSET.match(text):
        raise ValueError(
            f"{text!r} carries a UTC offset; write the local time in timeZone ({_LOCAL_FORMAT})"
        )
    is_date = bool(_LOCAL_DATE.fullmatch(text))
    if need_time and is_date:
        raise ValueError(f"{text!r} has no time of day; expected YYYY-MM-DDTHH:MM[:SS]")
    if not is_date and not _LOCAL_DATETIME.fullmatch(text):
        raise ValueError(f"{text!r} is not {_LOCAL_FORMAT}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date or time") from None
    if is_date and end_of_day:
        return value + timedelta(days=1) - _TICK
    return value


def _valid_cron(expr: str) -> str:
    check_cron(expr)
    return expr


class DstPolicy(Wire):
    """What a cron time does when DST makes its wall time vanish (gap) or happen twice (repeat)."""

    gap: Literal["shift", "skip"] = "shift"
    repeat: Literal["first", "last", "both"] = "first"


def _document_time_zone_alias(schema: dict[str, Any]) -> None:
    schema["properties"][TIME_ZONE_ALIAS] = {
        "type": "string",
        "title": "Timezone",
        "description": "timeZone as Loome spells it; give one of the two, not both",
    }


class ScheduleSpec(Wire):
    """A schedule of a job, exactly as it is accepted over the API (the PUT body)."""

    model_config = ConfigDict(json_schema_extra=_document_time_zone_alias)

    # The path names the schedule; a name in the body must equal it (the service checks).
    name: str | None = None
    time_zone: str = "UTC"
    start_date: str | None = None
    end_date: str | None = None
    enabled: Flag = True
    # runAt comes before crons so that the crons validator sees it and can say which is wrong.
    run_at: str | None = None
    crons: list[Annotated[str, AfterValidator(_valid_cron)]] | None = Field(
        default=None, validate_default=True
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["full", "delta"] = "full"
    dst_policy: DstPolicy = Field(default_factory=DstPolicy)
    misfire_policy: Literal["skip", "runOnce", "runAll"] = "runOnce"
    catchup_window: Seconds = Field(default=3600, gt=0, le=MAX_CATCHUP_WINDOW)
    overlap_policy: Literal["allow", "skip", "bufferOne", "cancelPrevious"] = "skip"

    _timetable: Timetable | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _time_zone_alias(cls, data: Any) -> Any:
        if not isinstance(data, dict) or TIME_ZONE_ALIAS not in data:
            return data
        if "timeZone" in data or "time_zone" in data:
            # No silent choice between two zones: one of them is a mistake.
            raise ValueError(
                f"timeZone and {TIME_ZONE_ALIAS} (Loome's spelling) name the same field; "
                "give one of them"
            )
        rest = {k: v for k, v in data.items() if k != TIME_ZONE_ALIAS}
        return {**rest, "timeZone": data[TIME_ZONE_ALIAS]}

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        resolve_time_zone(value)
        return value

    @field_validator("start_date")
    @classmethod
    def _start_is_local(cls, value: str | None) -> str | None:
        if value is not None:
            parse_local(value)
        return value

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        end = parse_local(value, end_of_day=True)
        start_text = info.data.get("start_date")
        if start_text is not None and end < parse_local(start_text):
            raise ValueError(f"endDate {value!r} is before startDate {start_text!r}")
        return value

    @field_validator("run_at")
    @classmethod
    def _run_at_is_local(cls, value: str | None) -> str | None:
        if value is not None:
            parse_local(value, need_time=True)
        return value

    @field_validator("crons")
    @classmethod
    def _crons_xor_run_at(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if "run_at" not in info.data:
            return value  # runAt is invalid and already reported
        run_at = info.data["run_at"]
        if value is not None and run_at is not None:
            raise ValueError("give either crons or runAt, not both")
        if value is None and run_at is None:
            raise ValueError("give crons (one or more cron expressions) or runAt (a one-time run)")
        if value is not None and not value:
            raise ValueError("crons is empty; give at least one cron expression, or runAt instead")
        return value

    def timetable(self) -> Timetable:
        """The compiled form, built once per spec (and shared between equal specs)."""
        if self._timetable is None:
            self._timetable = _compile(
                self.time_zone,
                tuple(self.crons or ()),
                self.run_at,
                self.start_date,
                self.end_date,
                self.dst_policy,
            )
        return self._timetable


@lru_cache(maxsize=4096)
def timetable_for(spec_json: str) -> Timetable:
    """The timetable of a spec given as its JSON, cached (firing reads stored specs through
    compiled())."""
    return ScheduleSpec.model_validate_json(spec_json).timetable()


_COMPILED: dict[str, tuple[ScheduleSpec, Timetable]] = {}


def compiled(stored: Mapping[str, Any]) -> tuple[ScheduleSpec, Timetable]:
    """A stored spec (the JSON object) parsed, and its timetable: cached, for firing.

    Keyed by the definition without its name: schedules that share a definition (the
    common case) share one parsed spec and timetable.
    """
    key = json.dumps({**stored, "name": None}, sort_keys=True)
    cached = _COMPILED.get(key)
    if cached is None:
        spec = ScheduleSpec.model_validate(stored)
        cached = (spec, spec.timetable())
        if len(_COMPILED) > 50_000:
            _COMPILED.clear()
        _COMPILED[key] = cached
    return cached


@lru_cache(maxsize=16384)
def _compile(
    time_zone: str,
    crons: tuple[str, ...],
    run_at: str | None,
    start_date: str | None,
    end_date: str | None,
    dst: DstPolicy,
) -> Timetable:
    iana = resolve_time_zone(time_zone)
    for expr in crons:
        check_cron(expr)
    return Timetable(
        zone=ZoneInfo(iana),
        iana=iana,
        crons=crons,
        run_at=parse_local(run_at, need_time=True) if run_at is not None else None,
        start=parse_local(start_date) if start_date is not None else None,
        end=parse_local(end_date, end_of_day=True) if end_date is not None else None,
        gap=dst.gap,
        repeat=dst.repeat,
    )
