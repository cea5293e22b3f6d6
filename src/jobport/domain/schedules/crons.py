"""Crons: parsing croniter's dialect, refusing what we cannot fire, and the fast path."""

# The dialect (croniter's): five fields ``minute hour day-of-month month day-of-week``, or six
# with *seconds as the sixth, last field* (``0 0 * * * 30`` fires at 00:00:30 daily; this is
# croniter's order, not Quartz's seconds-first one). Fields take lists, ranges and steps, month
# and weekday names (``JAN``, ``MON``), ``?`` in either day field, ``L`` (last day of the month
# in day-of-month, ``L5`` the last Friday in day-of-week), ``15W`` (the weekday nearest the
# 15th), ``MON#2`` (the second Monday) and the macros ``@hourly @daily @midnight @weekly
# @monthly @yearly @annually``. When day-of-month and day-of-week are both restricted, a day
# matching either fires (Vixie cron). Hashed (``H``) and random (``R``) values are refused:
# every node must compute the same times.
#
# A cron names naive local wall times; the timetable resolves them to instants. The scheduler
# asks for a next fire after every fire, so parsed crons are cached and plain crons are matched
# on value sets rather than walked by croniter.

from __future__ import annotations

import bisect
import calendar
import copy
import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from croniter import CroniterBadDateError, croniter

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week", "second")
_SHAPE = "5 fields (minute hour day-of-month month day-of-week) or 6 (the same, then second)"
_MACROS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_HASHED_OR_RANDOM = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
# croniter gives up after 50 years without a match; every cron without a year field repeats
# within 28 years from here, so a search from this instant finds one if any exists.
_REFERENCE = datetime(2000, 1, 1)

_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)


def check_cron(expr: str) -> None:
    """Raise ValueError with the reason when `expr` is not a cron we can fire."""
    parse_cron(expr)


@lru_cache(maxsize=16384)
def parse_cron(expr: str) -> Cron:
    """The parsed cron, shared between timetables (it holds no iteration state)."""
    text = expr.strip()
    if not text:
        raise ValueError(f"cron is empty; expected {_SHAPE}")
    if text.startswith("@"):
        if text.lower() not in _MACROS:
            raise ValueError(f"cron {expr!r} is an unknown macro; use one of {', '.join(_MACROS)}")
    else:
        fields = text.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"cron {expr!r} has {len(fields)} fields; expected {_SHAPE}")
        for field_name, value in zip(_FIELDS, fields, strict=False):
            if _HASHED_OR_RANDOM.match(value):
                raise ValueError(
                    f"cron {expr!r}: {field_name} field {value!r} is hashed or random, "
                    "which is not supported"
                )
    try:
        parsed = croniter(text, _REFERENCE, ret_type=datetime)
        parsed.get_next()
    except CroniterBadDateError:
        raise ValueError(f"cron {expr!r} never matches a date") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"cron {expr!r} is not valid: {exc}") from None
    if parsed.nth_weekday_of_month or parsed.nearest_weekday:
        return _CroniterCron(parsed)
    return _PlainCron(parsed.expanded)


class Cron:
    """A parsed cron: the wall times it names, one after another."""

    __slots__ = ()

    def next_after(self, wall: datetime) -> datetime | None:
        """The first naive wall time strictly after `wall` that the cron names."""
        raise NotImplementedError


class _CroniterCron(Cron):
    """Crons with `#`, `W` or `L` in day-of-week, which croniter walks for us."""

    __slots__ = ("_parsed",)

    def __init__(self, parsed: croniter) -> None:
        self._parsed = parsed

    def next_after(self, wall: datetime) -> datetime | None:
        walker = copy.copy(self._parsed)  # croniter iterates in place; ours is shared
        try:
            return walker.get_next(datetime, start_time=wall)
        except (CroniterBadDateError, OverflowError):
            return None


class _PlainCron(Cron):
    """Every other cron, matched on sets of values from croniter's own expansion.

    croniter costs tens of microseconds a step; this costs a few, and the scheduler takes
    one step per fire of every schedule. Its semantics are croniter's (a test compares them).
    """

    __slots__ = ("_days", "_dows", "_hours", "_last", "_minutes", "_months", "_seconds", "_step")

    def __init__(self, expanded: list[list[Any]]) -> None:
        minutes, hours, days, months, dows = expanded[:5]
        self._seconds = _values(expanded[5], 0, 59) if len(expanded) > 5 else (0,)
        self._step = _SECOND if len(expanded) > 5 else _MINUTE
        self._minutes = _values(minutes, 0, 59)
        self._hours = _values(hours, 0, 23)
        self._months = None if "*" in months else frozenset(months)
        self._days = None if "*" in days else frozenset(d for d in days if d != "l")
        self._last = "l" in days
        self._dows = None if "*" in dows else frozenset(d % 7 for d in dows)

    def next_after(self, wall: datetime) -> datetime | None:
        try:
            start = wall.replace(microsecond=0) + self._step
        except OverflowError:
            return None
        if self._step == _MINUTE:
            start = start.replace(second=0)
        day = start.date()
        clock = start.hour * 3600 + start.minute * 60 + start.second
        # croniter's horizon: no match within 50 years means none at all
        limit = date(min(day.year + 50, 9999), 1, 1)
        while day < limit:
            if self._months is not None and day.month not in self._months:
                day = _first_of_next_month(day)
                clock = 0
                continue
            if self._matches(day):
                found = self._time_from(clock)
                if found is not None:
                    return datetime(day.year, day.month, day.day, *found)
            day += _DAY
            clock = 0
        return None

    def _matches(self, day: date) -> bool:
        days, dows = self._days, self._dows
        on_date = days is None or day.day in days
        if self._last and not on_date:
            on_date = day.day == calendar.monthrange(day.year, day.month)[1]
        on_weekday = dows is None or (day.weekday() + 1) % 7 in dows
        if days is not None and dows is not None:
            return on_date or on_weekday  # both restricted: either matches (Vixie cron)
        return on_date and on_weekday

    def _time_from(self, clock: int) -> tuple[int, int, int] | None:
        """The first (hour, minute, second) at or after `clock` seconds into the day."""
        hours, minutes, seconds = self._hours, self._minutes, self._seconds
        hour, rest = divmod(clock, 3600)
        minute, second = divmod(rest, 60)
        h = bisect.bisect_left(hours, hour)
        if h < len(hours) and hours[h] == hour:
            m = bisect.bisect_left(minutes, minute)
            if m < len(minutes) and minutes[m] == minute:
                s = bisect.bisect_left(seconds, second)
                if s < len(seconds):
                    return hour, minute, seconds[s]
                m += 1
            if m < len(minutes):
                return hour, minutes[m], seconds[0]
            h += 1
        if h < len(hours):
            return hours[h], minutes[0], seconds[0]
        return None


def _first_of_next_month(day: date) -> date:
    if day.month == 12:
        return date(day.year + 1, 1, 1)
    return date(day.year, day.month + 1, 1)


def _values(field: list[Any], low: int, high: int) -> tuple[int, ...]:
    if "*" in field:
        return tuple(range(low, high + 1))
    return tuple(sorted(set(field)))
