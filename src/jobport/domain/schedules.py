"""Schedules: the spec a user writes for a job's timed runs, and the timetable it compiles to.

Cron dialect (croniter's): five fields ``minute hour day-of-month month day-of-week``, or
six with *seconds as the sixth, last field* (``0 0 * * * 30`` fires at 00:00:30 daily; this is
croniter's order, not Quartz's seconds-first one). Fields take lists, ranges and steps, month
and weekday names (``JAN``, ``MON``), ``?`` in either day field, ``L`` (last day of the month in
day-of-month, ``L5`` the last Friday in day-of-week), ``15W`` (the weekday nearest the 15th),
``MON#2`` (the second Monday) and the macros ``@hourly @daily @midnight @weekly @monthly
@yearly @annually``. When day-of-month and day-of-week are both restricted, a day matching
either fires (Vixie cron). Hashed (``H``) and random (``R``) values are refused: every node must
compute the same times.

Crons are evaluated on naive local wall-clock time, then each wall time is resolved to UTC by
our own DST policy: a wall time inside a spring-forward gap fires at the transition instant
(``shift``) or not at all (``skip``); a wall time that happens twice on fall-back day fires at
its first occurrence, its last, or both. Several crons fire at the union of their instants, once
per instant. ``startDate``/``endDate`` bound the nominal wall time of a cron time (inclusive; a
date-only end means through the end of that day).

The scheduler asks for the next fire of every schedule after each fire, so that step is kept to
microseconds: parsed crons and timetables are cached, plain crons are matched on value sets
rather than walked by croniter, and away from DST transitions a wall time becomes an instant by
subtracting the zone's offset.
"""

from __future__ import annotations

import bisect
import calendar
import copy
import heapq
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter
from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, field_validator
from tzlocal.windows_tz import win_tz

from jobport.domain.wire import Flag, Seconds, Wire

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week", "second")
_SHAPE = "5 fields (minute hour day-of-month month day-of-week) or 6 (the same, then second)"
_MACROS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_HASHED_OR_RANDOM = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
# croniter gives up after 50 years without a match; every cron without a year field repeats
# within 28 years from here, so a search from this instant finds one if any exists.
_REFERENCE = datetime(2000, 1, 1)

_LOCAL_FORMAT = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"
_LOCAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_WITH_OFFSET = re.compile(r".*T.*([+-]\d{2}:?\d{2}|Z)$", re.IGNORECASE)

_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1)
# Wider than any DST change in tzdata (the largest are 2 hours), so a transition that can
# reorder wall times and instants around `after` is always inside this window.
_NEAR = timedelta(hours=3)
# The widest catch-up window: ten years. A wider one (or infinity) would overflow the date
# arithmetic of the first fire and stop the schedule; this one already means "every fire".
MAX_CATCHUP_WINDOW = 10 * 366 * 86_400
_EARLIEST = datetime(3, 1, 1, tzinfo=UTC)  # room for a zone offset and a year of DST search


# -- time zones -------------------------------------------------------------------------------


def resolve_time_zone(name: str) -> str:
    """IANA name for an IANA or Windows zone name; ValueError('unknown time zone ...') otherwise."""
    iana = _resolve_time_zone(name)
    if iana is None:
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as 'Australia/Sydney' "
            "or a Windows name such as 'AUS Eastern Standard Time'"
        )
    return iana


@lru_cache(maxsize=1024)
def _resolve_time_zone(name: str) -> str | None:
    if _is_zone(name):
        return name
    if name in win_tz:
        return win_tz[name]
    return _zones_by_folded_name().get(name.casefold())


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    """Every known name, case-folded, so 'australia/sydney' and 'utc' are understood too."""
    names = {iana.casefold(): iana for iana in available_timezones()}
    names.update({windows.casefold(): iana for windows, iana in win_tz.items()})
    return names


# -- crons ------------------------------------------------------------------------------------


def check_cron(expr: str) -> None:
    """Raise ValueError with the reason when `expr` is not a cron we can fire."""
    _parse_cron(expr)


@lru_cache(maxsize=16384)
def _parse_cron(expr: str) -> _Cron:
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


class _Cron:
    """A parsed cron: the wall times it names, one after another."""

    __slots__ = ()

    def next_after(self, wall: datetime) -> datetime | None:
        """The first naive wall time strictly after `wall` that the cron names."""
        raise NotImplementedError


class _CroniterCron(_Cron):
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


class _PlainCron(_Cron):
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


def _valid_cron(expr: str) -> str:
    check_cron(expr)
    return expr


# -- local dates ------------------------------------------------------------------------------


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


# -- the spec ---------------------------------------------------------------------------------


class DstPolicy(Wire):
    """What a cron time does when DST makes its wall time vanish (gap) or happen twice (repeat)."""

    gap: Literal["shift", "skip"] = "shift"
    repeat: Literal["first", "last", "both"] = "first"


class ScheduleSpec(Wire):
    """A schedule of a job, exactly as it is accepted over the API (the PUT body)."""

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
    """The timetable of a stored spec (its JSON), cached: the scheduler's hot path."""
    return ScheduleSpec.model_validate_json(spec_json).timetable()


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
        dst=dst,
    )


# -- the timetable ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fire:
    """One instant a schedule fires."""

    utc: datetime  # aware UTC: the nominal fire instant, the key a fire is stored under
    local: datetime  # the same instant in the schedule's zone
    dst: str | None  # None, "shifted" (moved out of a DST gap) or "repeated" (ambiguous wall time)


@dataclass(frozen=True)
class Timetable:
    """When a schedule fires: its crons or one-time run, resolved in its zone."""

    zone: ZoneInfo
    iana: str
    crons: tuple[str, ...] = ()
    run_at: datetime | None = None  # naive local
    start: datetime | None = None  # naive local, inclusive
    end: datetime | None = None  # naive local, inclusive (a date-only endDate: end of that day)
    dst: DstPolicy = field(default_factory=DstPolicy)

    def fires_after(self, after: datetime, *, inclusive: bool = False) -> Iterator[Fire]:
        """Fires in ascending UTC order strictly after `after` (at or after with `inclusive`).

        Obeys start/end and the DST policy; several crons fire at the union of their
        instants, once each. Finite for a one-time run and with an end, and at the end of
        the time Python can represent (year 9999); a search from before year 3 starts there.
        """
        after_utc = _aware_utc(after)
        if after_utc < _EARLIEST:
            after_utc, inclusive = _EARLIEST, True
        try:
            yield from self._fires_after(after_utc, inclusive)
        except OverflowError:  # a fire past datetime.max, or a zone offset beyond it
            return

    def _fires_after(self, after_utc: datetime, inclusive: bool) -> Iterator[Fire]:
        if self.run_at is not None:
            yield from self._one_time(after_utc, inclusive)
            return
        if not self.crons:
            return
        zone, end = self.zone, self.end
        # Instants are naive UTC inside this loop: cheaper to compare than aware ones.
        after_naive = after_utc.replace(tzinfo=None)
        local = after_utc.astimezone(zone)
        offset = local.utcoffset()
        assert offset is not None
        # Between these instants the offset is `offset` and no wall time is in a gap or
        # repeated, so a wall time's instant is plain arithmetic: the common case, made fast.
        calm_from, calm_until = _calm_span(zone, after_naive)
        begin = self._search_start(local.replace(tzinfo=None), inclusive)
        if begin < calm_from + offset or begin >= calm_until + offset:
            begin = self._search_start_near_transition(after_utc, begin)
        if end is not None and begin >= end:
            return
        # A fire is yielded only when it is below every stream's bound, so instants come out
        # in order even where DST makes wall-clock order and instant order differ.
        # A stream: [lower bound of the instants still to come, the cron, its last wall time].
        first = begin - offset
        if not calm_from <= first < calm_until:
            first = self._lowest_instant(begin)
        streams: list[list[Any]] = [[first, _parse_cron(expr), begin] for expr in self.crons]
        pending: list[tuple[datetime, int, str | None]] = []
        last: datetime | None = None
        while streams or pending:
            stream = streams[0] if len(streams) == 1 else min(streams, key=_bound, default=None)
            if pending and (stream is None or pending[0][0] < stream[0]):
                instant, _, dst = heapq.heappop(pending)
                if instant == last:
                    continue  # the same instant from another cron or another wall time
                last = instant
                if instant > after_naive or (inclusive and instant == after_naive):
                    utc = instant.replace(tzinfo=UTC)
                    yield Fire(utc, utc.astimezone(zone), dst)
                continue
            assert stream is not None
            wall = stream[1].next_after(stream[2])
            if wall is None or (end is not None and wall > end):
                streams.remove(stream)
                continue
            stream[2] = wall
            instant = wall - offset
            if calm_from <= instant < calm_until:
                stream[0] = instant + _SECOND
                heapq.heappush(pending, (instant, 0, None))
            else:
                stream[0] = self._lowest_instant(wall + _SECOND)
                for item in self._instants(wall):
                    heapq.heappush(pending, item)

    def next_fire(self, after: datetime, *, inclusive: bool = False) -> Fire | None:
        """The first fire after `after` (at or after with `inclusive`), or None if there is none."""
        return next(self.fires_after(after, inclusive=inclusive), None)

    def fires_between(self, start: datetime, end: datetime, *, limit: int = 10000) -> list[Fire]:
        """Fires with start < utc <= end, in order, at most `limit` of them."""
        end_utc = _aware_utc(end)
        fires: list[Fire] = []
        if limit <= 0:
            return fires
        for fire in self.fires_after(start):
            if fire.utc > end_utc:
                break
            fires.append(fire)
            if len(fires) >= limit:
                break
        return fires

    def ended(self, now: datetime) -> bool:
        """True when nothing fires after `now` (past endDate, or a one-time run in the past)."""
        if self.run_at is None and self.end is None:
            return not self.crons
        return self.next_fire(now) is None

    # -- internals --

    def _one_time(self, after_utc: datetime, inclusive: bool) -> Iterator[Fire]:
        wall = self.run_at
        assert wall is not None
        if (self.start is not None and wall < self.start) or (
            self.end is not None and wall > self.end
        ):
            return
        after_naive = after_utc.replace(tzinfo=None)
        for instant, _, dst in sorted(self._instants(wall)):
            if instant > after_naive or (inclusive and instant == after_naive):
                utc = instant.replace(tzinfo=UTC)
                yield Fire(utc, utc.astimezone(self.zone), dst)

    def _instants(self, wall: datetime) -> list[tuple[datetime, int, str | None]]:
        """The naive UTC instants a wall time fires at under the DST policy, as heap items."""
        first = wall.replace(tzinfo=self.zone).utcoffset()
        second = wall.replace(tzinfo=self.zone, fold=1).utcoffset()
        assert first is not None and second is not None
        if first == second:
            return [(wall - first, 0, None)]
        if first > second:  # fall back: fold=0 is the earlier instant
            repeat = self.dst.repeat
            items: list[tuple[datetime, int, str | None]] = []
            if repeat in ("first", "both"):
                items.append((wall - first, 1, "repeated"))
            if repeat in ("last", "both"):
                items.append((wall - second, 1, "repeated"))
            return items
        if self.dst.gap == "skip":
            return []
        # In a gap zoneinfo reads fold=0 with the offset from before the transition.
        return [(_gap_end(self.zone, wall, first, second), 2, "shifted")]

    def _lowest_instant(self, wall: datetime) -> datetime:
        """A lower bound (naive UTC) of the instants of every wall time from `wall` on."""
        first = wall.replace(tzinfo=self.zone).utcoffset()
        second = wall.replace(tzinfo=self.zone, fold=1).utcoffset()
        assert first is not None and second is not None
        return wall - max(first, second)

    def _search_start(self, wall: datetime, inclusive: bool) -> datetime:
        """The naive wall time to search cron times from (exclusive), away from transitions."""
        begin = wall - _TICK if inclusive else wall
        if self.start is not None and begin < self.start - _TICK:
            begin = self.start - _TICK
        return begin

    def _search_start_near_transition(self, after_utc: datetime, begin: datetime) -> datetime:
        """Start earlier when a nearby transition gives earlier wall times later instants.

        Those are the second pass of a repeated hour, and a gap's wall times, which shift
        onto the transition instant.
        """
        zone = self.zone
        before = (after_utc - _NEAR).astimezone(zone).utcoffset()
        later = (after_utc + _NEAR).astimezone(zone).utcoffset()
        assert before is not None and later is not None
        if before != later:
            transition = _transition(zone, after_utc - _NEAR, after_utc + _NEAR)
            if before > later and after_utc < transition.replace(tzinfo=UTC):
                # The repeated wall times begin at the transition's new wall time.
                begin = min(begin, transition + later - _TICK)
            elif before < later and after_utc <= transition.replace(tzinfo=UTC):
                # The gap's wall times begin at the transition's old wall time.
                begin = min(begin, transition + before - _TICK)
        if self.start is not None and begin < self.start - _TICK:
            begin = self.start - _TICK
        return begin


def _bound(stream: list[Any]) -> datetime:
    return stream[0]


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def _transition(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first instant in (low, high] whose UTC offset differs from low's, as naive UTC.

    `low` and `high` are aware, or naive UTC.
    """
    lo = math.floor(_timestamp(low))
    hi = math.ceil(_timestamp(high))
    offset = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return _EPOCH + timedelta(seconds=hi)


def _timestamp(moment: datetime) -> float:
    if moment.tzinfo is None:
        return (moment - _EPOCH).total_seconds()
    return moment.timestamp()


@lru_cache(maxsize=4096)
def _transitions_in(zone: ZoneInfo, year: int) -> tuple[datetime, ...]:
    """The instants (naive UTC) in `year` at which the zone's UTC offset changes."""
    moment = datetime(year, 1, 1)
    stop = datetime(year + 1, 1, 1)
    offset = moment.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    found = []
    # Offsets change at most a few times a year, never twice in a day: sample daily.
    while moment < stop:
        moment += _DAY
        now = moment.replace(tzinfo=UTC).astimezone(zone).utcoffset()
        if now != offset:
            found.append(_transition(zone, moment - _DAY, moment))
            offset = now
    return tuple(found)


@lru_cache(maxsize=4096)
def _transitions_around(zone: ZoneInfo, year: int) -> tuple[datetime, ...]:
    return (
        _transitions_in(zone, year - 1)
        + _transitions_in(zone, year)
        + _transitions_in(zone, year + 1)
    )


def _calm_span(zone: ZoneInfo, moment: datetime) -> tuple[datetime, datetime]:
    """Naive UTC instants around `moment` between which wall times map plainly to instants.

    That is the stretch between the transitions before and after `moment`, less `_NEAR` at
    each end, where a repeated wall time's other pass could still lie.
    """
    year = moment.year
    if not 2 <= year <= 9997:
        return moment, moment  # empty: every wall time takes the careful path
    transitions = _transitions_around(zone, year)
    i = bisect.bisect_right(transitions, moment)
    low = transitions[i - 1] if i else datetime(year - 1, 1, 1)
    high = transitions[i] if i < len(transitions) else datetime(year + 2, 1, 1)
    return low + _NEAR, high - _NEAR


_GAP_ENDS: dict[tuple[str, Any, timedelta, timedelta], datetime] = {}


def _gap_end(zone: ZoneInfo, wall: datetime, before: timedelta, after: timedelta) -> datetime:
    """The transition instant (naive UTC) ending the gap that holds `wall`: its first valid one."""
    key = (zone.key, wall.date(), before, after)
    found = _GAP_ENDS.get(key)
    if found is None:
        # Every wall time of the gap lies between these readings of it, and so does the gap's end.
        found = _transition(zone, wall - after, wall - before)
        if len(_GAP_ENDS) > 4096:
            _GAP_ENDS.clear()
        _GAP_ENDS[key] = found
    return found
