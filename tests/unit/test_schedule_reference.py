"""Timetables against independent references: croniter itself, and a brute-force DST resolver.

The hand-written table in test_schedule_dst.py pins the rules down; these tests sweep many more
crons, zones and instants to show that the fast paths inside the timetable keep to them.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from jobport.domain.schedules import DstPolicy, ScheduleSpec, check_cron

MINUTES = ["*", "*/7", "5", "0,30", "10-20/5", "59", "0"]
HOURS = ["*", "3", "*/5", "9-17", "0,12", "23"]
DAYS = ["*", "*", "1", "15", "L", "31", "1-7", "29", "?", "10-20/3"]
MONTHS = ["*", "*", "2", "JAN-MAR", "*/4", "12", "6"]
WEEKDAYS = ["*", "*", "MON", "1-5", "0", "SAT,SUN", "7", "?", "2#3", "L5", "FRI"]
SECONDS = [None, None, None, "*/15", "0", "59", "10-40/10"]


def random_crons(count: int, seed: int) -> list[str]:
    pick = random.Random(seed).choice
    crons = []
    while len(crons) < count:
        fields = [pick(MINUTES), pick(HOURS), pick(DAYS), pick(MONTHS), pick(WEEKDAYS)]
        second = pick(SECONDS)
        if second is not None:
            fields.append(second)
        if fields[2] == "?" and fields[4] == "?":
            continue
        expr = " ".join(fields)
        try:
            check_cron(expr)
        except ValueError:
            continue
        crons.append(expr)
    return crons


@pytest.mark.parametrize("cron", random_crons(150, seed=20250405))
def test_next_fire_in_utc_agrees_with_croniter(cron: str):
    table = ScheduleSpec(crons=[cron]).timetable()
    starts = random.Random(cron).sample(range(0, 40 * 365 * 86400, 7919), 6)

    for offset in starts:
        moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
            seconds=offset, microseconds=offset % 3
        )
        walker = croniter(cron, moment.replace(tzinfo=None), ret_type=datetime)
        for _ in range(4):
            expected = walker.get_next().replace(tzinfo=UTC)
            fire = table.next_fire(moment)
            assert fire is not None and fire.utc == expected, (cron, moment)
            moment = fire.utc


# -- DST: the timetable against a resolver that tries every wall time ---------------------------


@functools.cache
def transition_days(zone: ZoneInfo, year: int) -> list[date]:
    """Local dates on which the zone's UTC offset changes during `year`."""
    days, moment = [], datetime(year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        moment += timedelta(minutes=15)
        local = moment.astimezone(zone)
        if local.utcoffset() != offset:
            days.append(local.date())
            offset = local.utcoffset()
    return days


def reference_fires(
    zone: ZoneInfo, walls: list[tuple[int, int]], days: list[date], policy: DstPolicy
) -> list[tuple[datetime, str | None]]:
    """Fires of daily wall times (hour, minute) on `days`, found by round-tripping each one."""
    found: dict[datetime, str | None] = {}

    def add(instant: datetime, marker: str | None) -> None:
        if instant not in found or marker is None:
            found[instant] = marker

    for day in days:
        for hour, minute in walls:
            wall = datetime(day.year, day.month, day.day, hour, minute)
            valid = sorted(
                {
                    instant
                    for fold in (0, 1)
                    if (instant := wall.replace(tzinfo=zone, fold=fold).astimezone(UTC))
                    .astimezone(zone)
                    .replace(tzinfo=None)
                    == wall
                }
            )
            if len(valid) == 1:
                add(valid[0], None)
            elif len(valid) == 2:
                if policy.repeat in ("first", "both"):
                    add(valid[0], "repeated")
                if policy.repeat in ("last", "both"):
                    add(valid[1], "repeated")
            elif policy.gap == "shift":
                later = wall
                while (
                    later.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
                    != later
                ):
                    later += timedelta(minutes=1)
                add(later.replace(tzinfo=zone).astimezone(UTC), "shifted")
    return sorted(found.items())


ZONES = [
    "Australia/Sydney",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Europe/Dublin",  # negative DST in tzdata: winter is the "daylight" offset
    "America/Santiago",  # changes at midnight: the gap or the repeat spans 00:00
    "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45
    "America/St_Johns",  # -03:30 / -02:30
]
CRONS = {
    "*/15 * * * *": [(h, m) for h in range(24) for m in (0, 15, 30, 45)],
    "0 * * * *": [(h, 0) for h in range(24)],
    "5,50 0-3 * * *": [(h, m) for h in range(4) for m in (5, 50)],
}


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("cron", list(CRONS))
@pytest.mark.parametrize("gap", ["shift", "skip"])
@pytest.mark.parametrize("repeat", ["first", "last", "both"])
def test_fires_around_every_2025_transition_match_a_brute_force_reference(
    zone_name: str, cron: str, gap: str, repeat: str
):
    zone = ZoneInfo(zone_name)
    policy = DstPolicy(gap=gap, repeat=repeat)
    table = ScheduleSpec(time_zone=zone_name, crons=[cron], dst_policy=policy).timetable()

    for day in transition_days(zone, 2025):
        days = [day + timedelta(days=d) for d in (-1, 0, 1)]
        expected = reference_fires(zone, CRONS[cron], days, policy)
        start = datetime.combine(days[0], datetime.min.time(), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=2), datetime.min.time(), zone).astimezone(UTC)
        got = [(f.utc, f.dst) for f in table.fires_between(start - timedelta(seconds=1), end)]
        assert [g for g in got if g[0] < end] == expected, (zone_name, day)

        # stepping one fire at a time, from every fire and from moments between them
        stepped, cursor = [], start - timedelta(seconds=1)
        while (fire := table.next_fire(cursor)) is not None and fire.utc < end:
            stepped.append((fire.utc, fire.dst))
            halfway = table.next_fire(fire.utc - timedelta(seconds=30))
            assert halfway is not None and halfway.utc <= fire.utc
            cursor = fire.utc
        assert stepped == expected, (zone_name, day)


def test_samoa_skipping_a_whole_day_shifts_that_day_to_the_next():
    # Pacific/Apia went from -10 to +14 at the end of 2011-12-29: 2011-12-30 never happened.
    table = ScheduleSpec(time_zone="Pacific/Apia", crons=["0 9 * * *"]).timetable()

    fires = table.fires_between(
        datetime(2011, 12, 28, tzinfo=UTC), datetime(2011, 12, 31, tzinfo=UTC)
    )

    assert [(f.local.isoformat(), f.dst) for f in fires] == [
        ("2011-12-28T09:00:00-10:00", None),
        ("2011-12-29T09:00:00-10:00", None),
        ("2011-12-31T00:00:00+14:00", "shifted"),
        ("2011-12-31T09:00:00+14:00", None),
    ]
