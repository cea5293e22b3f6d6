"""Schedules: zones, crons, the spec a user writes, the timetable it compiles to, records,
and which fires run (fires)."""

from jobport.domain.schedules import fires
from jobport.domain.schedules.crons import check_cron
from jobport.domain.schedules.records import Schedule, ScheduleFire
from jobport.domain.schedules.spec import (
    MAX_CATCHUP_WINDOW,
    DstPolicy,
    ScheduleSpec,
    compiled,
    parse_local,
    timetable_for,
)
from jobport.domain.schedules.timetable import Fire, Timetable
from jobport.domain.schedules.zones import resolve_time_zone

__all__ = [
    "MAX_CATCHUP_WINDOW",
    "DstPolicy",
    "Fire",
    "Schedule",
    "ScheduleFire",
    "ScheduleSpec",
    "Timetable",
    "check_cron",
    "compiled",
    "fires",
    "parse_local",
    "resolve_time_zone",
    "timetable_for",
]
