"""The timetable: when a schedule fires, its crons' wall times resolved to instants across DST."""

# Crons are evaluated on naive local wall-clock time, then each wall time is resolved to UTC by
# our own DST policy: a wall time inside a spring-forward gap fires at the transition instant
# (``shift``) or not at all (``skip``); a wall time that happens twice on fall-back day fires at
# its first occurrence, its last, or both. Several crons fire at the union of their instants,
# once per instant. ``startDate``/``endDate`` bound the nominal wall time of a cron time
# (inclusive; a date-only end means through the end of that day).
#
# The scheduler asks for the next fire of every schedule after each fire, so that step is kept
# to microseconds: timetables are cached (spec.py), and away from DST transitions a wall time
# becomes an instant by subtracting the zone's offset.

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jobport.domain.schedules.crons import parse_cron

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1)
# Wider than any DST change in tzdata (the largest are 2 hours), so a transition that can
# reorder wall times and instants around `after` is always inside this window.
_NEAR = timedelta(hours=3)
_EARLIEST = datetime(3, 1, 1, tzinfo=UTC)  # room for a zone offset and a year of DST search


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
    # The DST policy (the spec's DstPolicy, taken apart so this module needs no wire model).
    gap: Literal["shift", "skip"] = "shift"
    repeat: Literal["first", "last", "both"] = "first"

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
        streams: list[list[Any]] = [[first, parse_cron(expr), begin] for expr in self.crons]
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
            repeat = self.repeat
            items: list[tuple[datetime, int, str | None]] = []
            if repeat in ("first", "both"):
                items.append((wall - first, 1, "repeated"))
            if repeat in ("last", "both"):
                items.append((wall - second, 1, "repeated"))
            return items
        if self.gap == "skip":
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
