"""DST behaviour of schedules, as a table of hand-written fires around real tzdata transitions.

Transitions used (tzdata, 2025 unless the row says 2026):
- Australia/Sydney: gap 2025-10-05 02:00→03:00 (+10→+11, at 2025-10-04 16:00Z);
  repeat 2025-04-06 03:00→02:00 (+11→+10, at 2025-04-05 16:00Z), so 02:00-02:59 twice.
- America/New_York: gap 2025-03-09 02:00→03:00 (at 07:00Z); repeat 2025-11-02 02:00→01:00
  (at 06:00Z), so 01:00-01:59 twice.
- Europe/London: gap 2025-03-30 01:00→02:00 (at 01:00Z); repeat 2025-10-26 02:00→01:00
  (at 01:00Z), so 01:00-01:59 twice.
- Australia/Lord_Howe: gap 2025-10-05 02:00→02:30 (+10:30→+11, at 2025-10-04 15:30Z);
  repeat 2025-04-06 02:00→01:30 (+11→+10:30, at 2025-04-05 15:00Z), so 01:30-01:59 twice.

Rules: a wall time in a gap fires at the transition instant ("shifted") or not at all; a
repeated wall time fires at its first occurrence, its last, or both ("repeated"); one instant
fires once, unmarked if a regular wall time lands on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from jobport.domain.schedules import DstPolicy, Fire, ScheduleSpec, Timetable

GAPS = ("shift", "skip")
REPEATS = ("first", "last", "both")


@dataclass(frozen=True)
class Row:
    name: str
    zone: str
    cron: str
    after: str  # window start, exclusive, "YYYY-MM-DD HH:MMZ"
    until: str  # window end, inclusive
    gaps: tuple[str, ...]
    repeats: tuple[str, ...]
    fires: tuple[str, ...]  # "<utc>Z = <local with offset>[ <marker>]"


def row(name, zone, cron, window, gaps, repeats, *fires):
    return Row(name, zone, cron, window[0], window[1], gaps, repeats, fires)


SYD, NYC, LON, LHI = "Australia/Sydney", "America/New_York", "Europe/London", "Australia/Lord_Howe"

# fmt: off
TABLE = [
    # ---- Australia/Sydney, spring forward 2025-10-05: 02:00-02:59 does not exist ----
    row("syd-gap-daily-shift", SYD, "30 2 * * *", ("2025-10-03 14:00Z", "2025-10-06 13:00Z"),
        ("shift",), REPEATS,
        "2025-10-03 16:30Z = 2025-10-04 02:30+10:00",
        "2025-10-04 16:00Z = 2025-10-05 03:00+11:00 shifted",
        "2025-10-05 15:30Z = 2025-10-06 02:30+11:00"),
    row("syd-gap-daily-skip", SYD, "30 2 * * *", ("2025-10-03 14:00Z", "2025-10-06 13:00Z"),
        ("skip",), REPEATS,
        "2025-10-03 16:30Z = 2025-10-04 02:30+10:00",
        "2025-10-05 15:30Z = 2025-10-06 02:30+11:00"),
    # 02:00 shifts onto 03:00's instant: one unmarked fire either way.
    row("syd-gap-hourly", SYD, "0 * * * *", ("2025-10-04 14:30Z", "2025-10-04 17:30Z"),
        GAPS, REPEATS,
        "2025-10-04 15:00Z = 2025-10-05 01:00+10:00",
        "2025-10-04 16:00Z = 2025-10-05 03:00+11:00",
        "2025-10-04 17:00Z = 2025-10-05 04:00+11:00"),
    row("syd-gap-quarterly", SYD, "*/15 * * * *", ("2025-10-04 15:30Z", "2025-10-04 16:30Z"),
        GAPS, REPEATS,
        "2025-10-04 15:45Z = 2025-10-05 01:45+10:00",
        "2025-10-04 16:00Z = 2025-10-05 03:00+11:00",
        "2025-10-04 16:15Z = 2025-10-05 03:15+11:00",
        "2025-10-04 16:30Z = 2025-10-05 03:30+11:00"),
    # ---- Australia/Sydney, fall back 2025-04-06: 02:00-02:59 happens twice ----
    row("syd-repeat-daily-first", SYD, "30 2 * * *", ("2025-04-04 13:00Z", "2025-04-07 14:00Z"),
        GAPS, ("first",),
        "2025-04-04 15:30Z = 2025-04-05 02:30+11:00",
        "2025-04-05 15:30Z = 2025-04-06 02:30+11:00 repeated",
        "2025-04-06 16:30Z = 2025-04-07 02:30+10:00"),
    row("syd-repeat-daily-last", SYD, "30 2 * * *", ("2025-04-04 13:00Z", "2025-04-07 14:00Z"),
        GAPS, ("last",),
        "2025-04-04 15:30Z = 2025-04-05 02:30+11:00",
        "2025-04-05 16:30Z = 2025-04-06 02:30+10:00 repeated",
        "2025-04-06 16:30Z = 2025-04-07 02:30+10:00"),
    row("syd-repeat-daily-both", SYD, "30 2 * * *", ("2025-04-04 13:00Z", "2025-04-07 14:00Z"),
        GAPS, ("both",),
        "2025-04-04 15:30Z = 2025-04-05 02:30+11:00",
        "2025-04-05 15:30Z = 2025-04-06 02:30+11:00 repeated",
        "2025-04-05 16:30Z = 2025-04-06 02:30+10:00 repeated",
        "2025-04-06 16:30Z = 2025-04-07 02:30+10:00"),
    row("syd-repeat-hourly-first", SYD, "0 * * * *", ("2025-04-05 13:30Z", "2025-04-05 18:30Z"),
        GAPS, ("first",),
        "2025-04-05 14:00Z = 2025-04-06 01:00+11:00",
        "2025-04-05 15:00Z = 2025-04-06 02:00+11:00 repeated",
        "2025-04-05 17:00Z = 2025-04-06 03:00+10:00",
        "2025-04-05 18:00Z = 2025-04-06 04:00+10:00"),
    row("syd-repeat-hourly-last", SYD, "0 * * * *", ("2025-04-05 13:30Z", "2025-04-05 18:30Z"),
        GAPS, ("last",),
        "2025-04-05 14:00Z = 2025-04-06 01:00+11:00",
        "2025-04-05 16:00Z = 2025-04-06 02:00+10:00 repeated",
        "2025-04-05 17:00Z = 2025-04-06 03:00+10:00",
        "2025-04-05 18:00Z = 2025-04-06 04:00+10:00"),
    row("syd-repeat-hourly-both", SYD, "0 * * * *", ("2025-04-05 13:30Z", "2025-04-05 18:30Z"),
        GAPS, ("both",),
        "2025-04-05 14:00Z = 2025-04-06 01:00+11:00",
        "2025-04-05 15:00Z = 2025-04-06 02:00+11:00 repeated",
        "2025-04-05 16:00Z = 2025-04-06 02:00+10:00 repeated",
        "2025-04-05 17:00Z = 2025-04-06 03:00+10:00",
        "2025-04-05 18:00Z = 2025-04-06 04:00+10:00"),
    row("syd-repeat-quarterly-first", SYD, "*/15 * * * *",
        ("2025-04-05 14:30Z", "2025-04-05 17:15Z"), GAPS, ("first",),
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00",
        "2025-04-05 15:00Z = 2025-04-06 02:00+11:00 repeated",
        "2025-04-05 15:15Z = 2025-04-06 02:15+11:00 repeated",
        "2025-04-05 15:30Z = 2025-04-06 02:30+11:00 repeated",
        "2025-04-05 15:45Z = 2025-04-06 02:45+11:00 repeated",
        "2025-04-05 17:00Z = 2025-04-06 03:00+10:00",
        "2025-04-05 17:15Z = 2025-04-06 03:15+10:00"),
    row("syd-repeat-quarterly-last", SYD, "*/15 * * * *",
        ("2025-04-05 14:30Z", "2025-04-05 17:15Z"), GAPS, ("last",),
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00",
        "2025-04-05 16:00Z = 2025-04-06 02:00+10:00 repeated",
        "2025-04-05 16:15Z = 2025-04-06 02:15+10:00 repeated",
        "2025-04-05 16:30Z = 2025-04-06 02:30+10:00 repeated",
        "2025-04-05 16:45Z = 2025-04-06 02:45+10:00 repeated",
        "2025-04-05 17:00Z = 2025-04-06 03:00+10:00",
        "2025-04-05 17:15Z = 2025-04-06 03:15+10:00"),
    row("syd-repeat-quarterly-both", SYD, "*/15 * * * *",
        ("2025-04-05 14:30Z", "2025-04-05 17:15Z"), GAPS, ("both",),
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00",
        "2025-04-05 15:00Z = 2025-04-06 02:00+11:00 repeated",
        "2025-04-05 15:15Z = 2025-04-06 02:15+11:00 repeated",
        "2025-04-05 15:30Z = 2025-04-06 02:30+11:00 repeated",
        "2025-04-05 15:45Z = 2025-04-06 02:45+11:00 repeated",
        "2025-04-05 16:00Z = 2025-04-06 02:00+10:00 repeated",
        "2025-04-05 16:15Z = 2025-04-06 02:15+10:00 repeated",
        "2025-04-05 16:30Z = 2025-04-06 02:30+10:00 repeated",
        "2025-04-05 16:45Z = 2025-04-06 02:45+10:00 repeated",
        "2025-04-05 17:00Z = 2025-04-06 03:00+10:00",
        "2025-04-05 17:15Z = 2025-04-06 03:15+10:00"),
    # ---- Australia/Sydney 2026: gap on 2026-10-04, repeat on 2026-04-05 ----
    row("syd-2026-gap-daily-shift", SYD, "30 2 * * *", ("2026-10-02 14:00Z", "2026-10-04 13:00Z"),
        ("shift",), REPEATS,
        "2026-10-02 16:30Z = 2026-10-03 02:30+10:00",
        "2026-10-03 16:00Z = 2026-10-04 03:00+11:00 shifted"),
    row("syd-2026-gap-daily-skip", SYD, "30 2 * * *", ("2026-10-02 14:00Z", "2026-10-04 13:00Z"),
        ("skip",), REPEATS,
        "2026-10-02 16:30Z = 2026-10-03 02:30+10:00"),
    row("syd-2026-repeat-daily-both", SYD, "30 2 * * *",
        ("2026-04-04 13:00Z", "2026-04-05 14:00Z"), GAPS, ("both",),
        "2026-04-04 15:30Z = 2026-04-05 02:30+11:00 repeated",
        "2026-04-04 16:30Z = 2026-04-05 02:30+10:00 repeated"),
    # ---- America/New_York, spring forward 2025-03-09: 02:00-02:59 does not exist ----
    row("nyc-gap-daily-shift", NYC, "30 2 * * *", ("2025-03-08 05:00Z", "2025-03-11 04:00Z"),
        ("shift",), REPEATS,
        "2025-03-08 07:30Z = 2025-03-08 02:30-05:00",
        "2025-03-09 07:00Z = 2025-03-09 03:00-04:00 shifted",
        "2025-03-10 06:30Z = 2025-03-10 02:30-04:00"),
    row("nyc-gap-daily-skip", NYC, "30 2 * * *", ("2025-03-08 05:00Z", "2025-03-11 04:00Z"),
        ("skip",), REPEATS,
        "2025-03-08 07:30Z = 2025-03-08 02:30-05:00",
        "2025-03-10 06:30Z = 2025-03-10 02:30-04:00"),
    row("nyc-gap-hourly", NYC, "0 * * * *", ("2025-03-09 05:30Z", "2025-03-09 08:30Z"),
        GAPS, REPEATS,
        "2025-03-09 06:00Z = 2025-03-09 01:00-05:00",
        "2025-03-09 07:00Z = 2025-03-09 03:00-04:00",
        "2025-03-09 08:00Z = 2025-03-09 04:00-04:00"),
    row("nyc-gap-quarterly", NYC, "*/15 * * * *", ("2025-03-09 06:30Z", "2025-03-09 07:30Z"),
        GAPS, REPEATS,
        "2025-03-09 06:45Z = 2025-03-09 01:45-05:00",
        "2025-03-09 07:00Z = 2025-03-09 03:00-04:00",
        "2025-03-09 07:15Z = 2025-03-09 03:15-04:00",
        "2025-03-09 07:30Z = 2025-03-09 03:30-04:00"),
    # ---- America/New_York, fall back 2025-11-02: 01:00-01:59 happens twice ----
    row("nyc-repeat-daily-first", NYC, "30 1 * * *", ("2025-11-01 04:00Z", "2025-11-04 05:00Z"),
        GAPS, ("first",),
        "2025-11-01 05:30Z = 2025-11-01 01:30-04:00",
        "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated",
        "2025-11-03 06:30Z = 2025-11-03 01:30-05:00"),
    row("nyc-repeat-daily-last", NYC, "30 1 * * *", ("2025-11-01 04:00Z", "2025-11-04 05:00Z"),
        GAPS, ("last",),
        "2025-11-01 05:30Z = 2025-11-01 01:30-04:00",
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated",
        "2025-11-03 06:30Z = 2025-11-03 01:30-05:00"),
    row("nyc-repeat-daily-both", NYC, "30 1 * * *", ("2025-11-01 04:00Z", "2025-11-04 05:00Z"),
        GAPS, ("both",),
        "2025-11-01 05:30Z = 2025-11-01 01:30-04:00",
        "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated",
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated",
        "2025-11-03 06:30Z = 2025-11-03 01:30-05:00"),
    row("nyc-repeat-hourly-first", NYC, "0 * * * *", ("2025-11-02 03:30Z", "2025-11-02 08:30Z"),
        GAPS, ("first",),
        "2025-11-02 04:00Z = 2025-11-02 00:00-04:00",
        "2025-11-02 05:00Z = 2025-11-02 01:00-04:00 repeated",
        "2025-11-02 07:00Z = 2025-11-02 02:00-05:00",
        "2025-11-02 08:00Z = 2025-11-02 03:00-05:00"),
    row("nyc-repeat-hourly-last", NYC, "0 * * * *", ("2025-11-02 03:30Z", "2025-11-02 08:30Z"),
        GAPS, ("last",),
        "2025-11-02 04:00Z = 2025-11-02 00:00-04:00",
        "2025-11-02 06:00Z = 2025-11-02 01:00-05:00 repeated",
        "2025-11-02 07:00Z = 2025-11-02 02:00-05:00",
        "2025-11-02 08:00Z = 2025-11-02 03:00-05:00"),
    row("nyc-repeat-hourly-both", NYC, "0 * * * *", ("2025-11-02 03:30Z", "2025-11-02 08:30Z"),
        GAPS, ("both",),
        "2025-11-02 04:00Z = 2025-11-02 00:00-04:00",
        "2025-11-02 05:00Z = 2025-11-02 01:00-04:00 repeated",
        "2025-11-02 06:00Z = 2025-11-02 01:00-05:00 repeated",
        "2025-11-02 07:00Z = 2025-11-02 02:00-05:00",
        "2025-11-02 08:00Z = 2025-11-02 03:00-05:00"),
    row("nyc-repeat-quarterly-first", NYC, "*/15 * * * *",
        ("2025-11-02 04:30Z", "2025-11-02 07:15Z"), GAPS, ("first",),
        "2025-11-02 04:45Z = 2025-11-02 00:45-04:00",
        "2025-11-02 05:00Z = 2025-11-02 01:00-04:00 repeated",
        "2025-11-02 05:15Z = 2025-11-02 01:15-04:00 repeated",
        "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated",
        "2025-11-02 05:45Z = 2025-11-02 01:45-04:00 repeated",
        "2025-11-02 07:00Z = 2025-11-02 02:00-05:00",
        "2025-11-02 07:15Z = 2025-11-02 02:15-05:00"),
    row("nyc-repeat-quarterly-last", NYC, "*/15 * * * *",
        ("2025-11-02 04:30Z", "2025-11-02 07:15Z"), GAPS, ("last",),
        "2025-11-02 04:45Z = 2025-11-02 00:45-04:00",
        "2025-11-02 06:00Z = 2025-11-02 01:00-05:00 repeated",
        "2025-11-02 06:15Z = 2025-11-02 01:15-05:00 repeated",
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated",
        "2025-11-02 06:45Z = 2025-11-02 01:45-05:00 repeated",
        "2025-11-02 07:00Z = 2025-11-02 02:00-05:00",
        "2025-11-02 07:15Z = 2025-11-02 02:15-05:00"),
    row("nyc-repeat-quarterly-both", NYC, "*/15 * * * *",
        ("2025-11-02 04:30Z", "2025-11-02 07:15Z"), GAPS, ("both",),
        "2025-11-02 04:45Z = 2025-11-02 00:45-04:00",
        "2025-11-02 05:00Z = 2025-11-02 01:00-04:00 repeated",
        "2025-11-02 05:15Z = 2025-11-02 01:15-04:00 repeated",
        "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated",
        "2025-11-02 05:45Z = 2025-11-02 01:45-04:00 repeated",
        "2025-11-02 06:00Z = 2025-11-02 01:00-05:00 repeated",
        "2025-11-02 06:15Z = 2025-11-02 01:15-05:00 repeated",
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated",
        "2025-11-02 06:45Z = 2025-11-02 01:45-05:00 repeated",
        "2025-11-02 07:00Z = 2025-11-02 02:00-05:00",
        "2025-11-02 07:15Z = 2025-11-02 02:15-05:00"),
    # ---- America/New_York 2026: gap on 2026-03-08, repeat on 2026-11-01 ----
    row("nyc-2026-gap-daily-shift", NYC, "30 2 * * *", ("2026-03-08 05:00Z", "2026-03-09 04:00Z"),
        ("shift",), REPEATS,
        "2026-03-08 07:00Z = 2026-03-08 03:00-04:00 shifted"),
    row("nyc-2026-gap-daily-skip", NYC, "30 2 * * *", ("2026-03-08 05:00Z", "2026-03-09 04:00Z"),
        ("skip",), REPEATS),
    row("nyc-2026-repeat-daily-last", NYC, "30 1 * * *",
        ("2026-11-01 04:00Z", "2026-11-02 05:00Z"), GAPS, ("last",),
        "2026-11-01 06:30Z = 2026-11-01 01:30-05:00 repeated"),
    # ---- Europe/London, spring forward 2025-03-30: 01:00-01:59 does not exist ----
    row("lon-gap-daily-shift", LON, "30 1 * * *", ("2025-03-29 00:00Z", "2025-03-31 23:00Z"),
        ("shift",), REPEATS,
        "2025-03-29 01:30Z = 2025-03-29 01:30+00:00",
        "2025-03-30 01:00Z = 2025-03-30 02:00+01:00 shifted",
        "2025-03-31 00:30Z = 2025-03-31 01:30+01:00"),
    row("lon-gap-daily-skip", LON, "30 1 * * *", ("2025-03-29 00:00Z", "2025-03-31 23:00Z"),
        ("skip",), REPEATS,
        "2025-03-29 01:30Z = 2025-03-29 01:30+00:00",
        "2025-03-31 00:30Z = 2025-03-31 01:30+01:00"),
    row("lon-gap-hourly", LON, "0 * * * *", ("2025-03-29 23:30Z", "2025-03-30 02:30Z"),
        GAPS, REPEATS,
        "2025-03-30 00:00Z = 2025-03-30 00:00+00:00",
        "2025-03-30 01:00Z = 2025-03-30 02:00+01:00",
        "2025-03-30 02:00Z = 2025-03-30 03:00+01:00"),
    row("lon-gap-quarterly", LON, "*/15 * * * *", ("2025-03-30 00:30Z", "2025-03-30 01:30Z"),
        GAPS, REPEATS,
        "2025-03-30 00:45Z = 2025-03-30 00:45+00:00",
        "2025-03-30 01:00Z = 2025-03-30 02:00+01:00",
        "2025-03-30 01:15Z = 2025-03-30 02:15+01:00",
        "2025-03-30 01:30Z = 2025-03-30 02:30+01:00"),
    # ---- Europe/London, fall back 2025-10-26: 01:00-01:59 happens twice ----
    row("lon-repeat-daily-first", LON, "30 1 * * *", ("2025-10-24 23:00Z", "2025-10-28 00:00Z"),
        GAPS, ("first",),
        "2025-10-25 00:30Z = 2025-10-25 01:30+01:00",
        "2025-10-26 00:30Z = 2025-10-26 01:30+01:00 repeated",
        "2025-10-27 01:30Z = 2025-10-27 01:30+00:00"),
    row("lon-repeat-daily-last", LON, "30 1 * * *", ("2025-10-24 23:00Z", "2025-10-28 00:00Z"),
        GAPS, ("last",),
        "2025-10-25 00:30Z = 2025-10-25 01:30+01:00",
        "2025-10-26 01:30Z = 2025-10-26 01:30+00:00 repeated",
        "2025-10-27 01:30Z = 2025-10-27 01:30+00:00"),
    row("lon-repeat-daily-both", LON, "30 1 * * *", ("2025-10-24 23:00Z", "2025-10-28 00:00Z"),
        GAPS, ("both",),
        "2025-10-25 00:30Z = 2025-10-25 01:30+01:00",
        "2025-10-26 00:30Z = 2025-10-26 01:30+01:00 repeated",
        "2025-10-26 01:30Z = 2025-10-26 01:30+00:00 repeated",
        "2025-10-27 01:30Z = 2025-10-27 01:30+00:00"),
    row("lon-repeat-hourly-first", LON, "0 * * * *", ("2025-10-25 22:30Z", "2025-10-26 03:30Z"),
        GAPS, ("first",),
        "2025-10-25 23:00Z = 2025-10-26 00:00+01:00",
        "2025-10-26 00:00Z = 2025-10-26 01:00+01:00 repeated",
        "2025-10-26 02:00Z = 2025-10-26 02:00+00:00",
        "2025-10-26 03:00Z = 2025-10-26 03:00+00:00"),
    row("lon-repeat-hourly-last", LON, "0 * * * *", ("2025-10-25 22:30Z", "2025-10-26 03:30Z"),
        GAPS, ("last",),
        "2025-10-25 23:00Z = 2025-10-26 00:00+01:00",
        "2025-10-26 01:00Z = 2025-10-26 01:00+00:00 repeated",
        "2025-10-26 02:00Z = 2025-10-26 02:00+00:00",
        "2025-10-26 03:00Z = 2025-10-26 03:00+00:00"),
    row("lon-repeat-hourly-both", LON, "0 * * * *", ("2025-10-25 22:30Z", "2025-10-26 03:30Z"),
        GAPS, ("both",),
        "2025-10-25 23:00Z = 2025-10-26 00:00+01:00",
        "2025-10-26 00:00Z = 2025-10-26 01:00+01:00 repeated",
        "2025-10-26 01:00Z = 2025-10-26 01:00+00:00 repeated",
        "2025-10-26 02:00Z = 2025-10-26 02:00+00:00",
        "2025-10-26 03:00Z = 2025-10-26 03:00+00:00"),
    row("lon-repeat-quarterly-first", LON, "*/15 * * * *",
        ("2025-10-25 23:30Z", "2025-10-26 02:15Z"), GAPS, ("first",),
        "2025-10-25 23:45Z = 2025-10-26 00:45+01:00",
        "2025-10-26 00:00Z = 2025-10-26 01:00+01:00 repeated",
        "2025-10-26 00:15Z = 2025-10-26 01:15+01:00 repeated",
        "2025-10-26 00:30Z = 2025-10-26 01:30+01:00 repeated",
        "2025-10-26 00:45Z = 2025-10-26 01:45+01:00 repeated",
        "2025-10-26 02:00Z = 2025-10-26 02:00+00:00",
        "2025-10-26 02:15Z = 2025-10-26 02:15+00:00"),
    row("lon-repeat-quarterly-last", LON, "*/15 * * * *",
        ("2025-10-25 23:30Z", "2025-10-26 02:15Z"), GAPS, ("last",),
        "2025-10-25 23:45Z = 2025-10-26 00:45+01:00",
        "2025-10-26 01:00Z = 2025-10-26 01:00+00:00 repeated",
        "2025-10-26 01:15Z = 2025-10-26 01:15+00:00 repeated",
        "2025-10-26 01:30Z = 2025-10-26 01:30+00:00 repeated",
        "2025-10-26 01:45Z = 2025-10-26 01:45+00:00 repeated",
        "2025-10-26 02:00Z = 2025-10-26 02:00+00:00",
        "2025-10-26 02:15Z = 2025-10-26 02:15+00:00"),
    row("lon-repeat-quarterly-both", LON, "*/15 * * * *",
        ("2025-10-25 23:30Z", "2025-10-26 02:15Z"), GAPS, ("both",),
        "2025-10-25 23:45Z = 2025-10-26 00:45+01:00",
        "2025-10-26 00:00Z = 2025-10-26 01:00+01:00 repeated",
        "2025-10-26 00:15Z = 2025-10-26 01:15+01:00 repeated",
        "2025-10-26 00:30Z = 2025-10-26 01:30+01:00 repeated",
        "2025-10-26 00:45Z = 2025-10-26 01:45+01:00 repeated",
        "2025-10-26 01:00Z = 2025-10-26 01:00+00:00 repeated",
        "2025-10-26 01:15Z = 2025-10-26 01:15+00:00 repeated",
        "2025-10-26 01:30Z = 2025-10-26 01:30+00:00 repeated",
        "2025-10-26 01:45Z = 2025-10-26 01:45+00:00 repeated",
        "2025-10-26 02:00Z = 2025-10-26 02:00+00:00",
        "2025-10-26 02:15Z = 2025-10-26 02:15+00:00"),
    # ---- Australia/Lord_Howe, spring forward 2025-10-05: 02:00-02:29 does not exist ----
    row("lhi-gap-daily-shift", LHI, "15 2 * * *", ("2025-10-03 13:30Z", "2025-10-06 13:00Z"),
        ("shift",), REPEATS,
        "2025-10-03 15:45Z = 2025-10-04 02:15+10:30",
        "2025-10-04 15:30Z = 2025-10-05 02:30+11:00 shifted",
        "2025-10-05 15:15Z = 2025-10-06 02:15+11:00"),
    row("lhi-gap-daily-skip", LHI, "15 2 * * *", ("2025-10-03 13:30Z", "2025-10-06 13:00Z"),
        ("skip",), REPEATS,
        "2025-10-03 15:45Z = 2025-10-04 02:15+10:30",
        "2025-10-05 15:15Z = 2025-10-06 02:15+11:00"),
    # 02:00 shifts to 02:30, which no hourly time occupies: here shift and skip differ.
    row("lhi-gap-hourly-shift", LHI, "0 * * * *", ("2025-10-04 14:00Z", "2025-10-04 17:00Z"),
        ("shift",), REPEATS,
        "2025-10-04 14:30Z = 2025-10-05 01:00+10:30",
        "2025-10-04 15:30Z = 2025-10-05 02:30+11:00 shifted",
        "2025-10-04 16:00Z = 2025-10-05 03:00+11:00",
        "2025-10-04 17:00Z = 2025-10-05 04:00+11:00"),
    row("lhi-gap-hourly-skip", LHI, "0 * * * *", ("2025-10-04 14:00Z", "2025-10-04 17:00Z"),
        ("skip",), REPEATS,
        "2025-10-04 14:30Z = 2025-10-05 01:00+10:30",
        "2025-10-04 16:00Z = 2025-10-05 03:00+11:00",
        "2025-10-04 17:00Z = 2025-10-05 04:00+11:00"),
    row("lhi-gap-quarterly", LHI, "*/15 * * * *", ("2025-10-04 15:00Z", "2025-10-04 16:00Z"),
        GAPS, REPEATS,
        "2025-10-04 15:15Z = 2025-10-05 01:45+10:30",
        "2025-10-04 15:30Z = 2025-10-05 02:30+11:00",
        "2025-10-04 15:45Z = 2025-10-05 02:45+11:00",
        "2025-10-04 16:00Z = 2025-10-05 03:00+11:00"),
    # ---- Australia/Lord_Howe, fall back 2025-04-06: 01:30-01:59 happens twice ----
    row("lhi-repeat-daily-first", LHI, "45 1 * * *", ("2025-04-04 13:00Z", "2025-04-07 13:30Z"),
        GAPS, ("first",),
        "2025-04-04 14:45Z = 2025-04-05 01:45+11:00",
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00 repeated",
        "2025-04-06 15:15Z = 2025-04-07 01:45+10:30"),
    row("lhi-repeat-daily-last", LHI, "45 1 * * *", ("2025-04-04 13:00Z", "2025-04-07 13:30Z"),
        GAPS, ("last",),
        "2025-04-04 14:45Z = 2025-04-05 01:45+11:00",
        "2025-04-05 15:15Z = 2025-04-06 01:45+10:30 repeated",
        "2025-04-06 15:15Z = 2025-04-07 01:45+10:30"),
    row("lhi-repeat-daily-both", LHI, "45 1 * * *", ("2025-04-04 13:00Z", "2025-04-07 13:30Z"),
        GAPS, ("both",),
        "2025-04-04 14:45Z = 2025-04-05 01:45+11:00",
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00 repeated",
        "2025-04-05 15:15Z = 2025-04-06 01:45+10:30 repeated",
        "2025-04-06 15:15Z = 2025-04-07 01:45+10:30"),
    # No hourly time falls in 01:30-01:59, so every repeat policy gives the same fires.
    row("lhi-repeat-hourly", LHI, "0 * * * *", ("2025-04-05 12:30Z", "2025-04-05 17:00Z"),
        GAPS, REPEATS,
        "2025-04-05 13:00Z = 2025-04-06 00:00+11:00",
        "2025-04-05 14:00Z = 2025-04-06 01:00+11:00",
        "2025-04-05 15:30Z = 2025-04-06 02:00+10:30",
        "2025-04-05 16:30Z = 2025-04-06 03:00+10:30"),
    row("lhi-repeat-quarterly-first", LHI, "*/15 * * * *",
        ("2025-04-05 14:00Z", "2025-04-05 15:45Z"), GAPS, ("first",),
        "2025-04-05 14:15Z = 2025-04-06 01:15+11:00",
        "2025-04-05 14:30Z = 2025-04-06 01:30+11:00 repeated",
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00 repeated",
        "2025-04-05 15:30Z = 2025-04-06 02:00+10:30",
        "2025-04-05 15:45Z = 2025-04-06 02:15+10:30"),
    row("lhi-repeat-quarterly-last", LHI, "*/15 * * * *",
        ("2025-04-05 14:00Z", "2025-04-05 15:45Z"), GAPS, ("last",),
        "2025-04-05 14:15Z = 2025-04-06 01:15+11:00",
        "2025-04-05 15:00Z = 2025-04-06 01:30+10:30 repeated",
        "2025-04-05 15:15Z = 2025-04-06 01:45+10:30 repeated",
        "2025-04-05 15:30Z = 2025-04-06 02:00+10:30",
        "2025-04-05 15:45Z = 2025-04-06 02:15+10:30"),
    # The second 01:30 (15:00Z) comes after the first 01:45 (14:45Z): yielded in UTC order.
    row("lhi-repeat-quarterly-both", LHI, "*/15 * * * *",
        ("2025-04-05 14:00Z", "2025-04-05 15:45Z"), GAPS, ("both",),
        "2025-04-05 14:15Z = 2025-04-06 01:15+11:00",
        "2025-04-05 14:30Z = 2025-04-06 01:30+11:00 repeated",
        "2025-04-05 14:45Z = 2025-04-06 01:45+11:00 repeated",
        "2025-04-05 15:00Z = 2025-04-06 01:30+10:30 repeated",
        "2025-04-05 15:15Z = 2025-04-06 01:45+10:30 repeated",
        "2025-04-05 15:30Z = 2025-04-06 02:00+10:30",
        "2025-04-05 15:45Z = 2025-04-06 02:15+10:30"),
]
# fmt: on

CASES = [
    pytest.param(r, gap, repeat, id=f"{r.name}[{gap},{repeat}]")
    for r in TABLE
    for gap in r.gaps
    for repeat in r.repeats
]


def at(text: str) -> datetime:
    """'2025-10-04 16:00Z' as an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%d %H:%MZ").replace(tzinfo=UTC)


def show(fire: Fire) -> str:
    text = f"{fire.utc:%Y-%m-%d %H:%M}Z = {fire.local.isoformat(sep=' ', timespec='minutes')}"
    return f"{text} {fire.dst}" if fire.dst else text


def timetable(zone: str, crons: list[str], gap: str, repeat: str) -> Timetable:
    spec = ScheduleSpec(time_zone=zone, crons=crons, dst_policy=DstPolicy(gap=gap, repeat=repeat))
    return spec.timetable()


def test_the_table_covers_every_zone_transition_cron_and_policy():
    covered = {
        (r.zone, r.name.split("-")[1], r.cron, g, p)
        for r in TABLE
        for g in r.gaps
        for p in r.repeats
    }
    for zone in (SYD, NYC, LON, LHI):
        for kind in ("gap", "repeat"):
            crons = {c for (z, k, c, _, _) in covered if z == zone and k == kind}
            assert {"0 * * * *", "*/15 * * * *"} <= crons and len(crons) == 3, (zone, kind)
            for cron in crons:
                policies = {
                    (g, p) for (z, k, c, g, p) in covered if (z, k, c) == (zone, kind, cron)
                }
                assert policies == {(g, p) for g in GAPS for p in REPEATS}, (zone, kind, cron)


@pytest.mark.parametrize(("r", "gap", "repeat"), CASES)
def test_fires_around_a_dst_transition(r: Row, gap: str, repeat: str):
    table = timetable(r.zone, [r.cron], gap, repeat)

    fires = table.fires_between(at(r.after), at(r.until))

    assert [show(f) for f in fires] == list(r.fires)
    for fire in fires:
        assert fire.utc.tzinfo is UTC
        # (an ambiguous local time never compares equal across zones: compare in UTC)
        assert fire.local.astimezone(UTC) == fire.utc and str(fire.local.tzinfo) == r.zone


@pytest.mark.parametrize(("r", "gap", "repeat"), CASES)
def test_next_fire_steps_through_a_dst_transition_one_fire_at_a_time(r: Row, gap: str, repeat: str):
    table = timetable(r.zone, [r.cron], gap, repeat)

    seen, cursor = [], at(r.after)
    while (fire := table.next_fire(cursor)) is not None and fire.utc <= at(r.until):
        seen.append(show(fire))
        assert table.next_fire(fire.utc, inclusive=True) == fire
        cursor = fire.utc

    assert seen == list(r.fires)


def test_a_shifted_gap_time_and_a_regular_time_on_its_instant_fire_once_unmarked():
    table = timetable(SYD, ["0 2 * * *", "0 3 * * *"], "shift", "first")

    fires = table.fires_between(at("2025-10-04 14:00Z"), at("2025-10-05 13:00Z"))

    assert [show(f) for f in fires] == ["2025-10-04 16:00Z = 2025-10-05 03:00+11:00"]


def test_several_gap_times_collapse_onto_one_shifted_fire():
    table = timetable(NYC, ["0,20,40 2 * * *"], "shift", "first")

    fires = table.fires_between(at("2025-03-09 05:00Z"), at("2025-03-10 04:00Z"))

    assert [show(f) for f in fires] == ["2025-03-09 07:00Z = 2025-03-09 03:00-04:00 shifted"]


def test_repeat_both_from_two_crons_naming_the_same_wall_time_fires_each_instant_once():
    table = timetable(NYC, ["30 1 * * *", "30 1 * * SUN"], "shift", "both")

    fires = table.fires_between(at("2025-11-02 04:00Z"), at("2025-11-02 12:00Z"))

    assert [show(f) for f in fires] == [
        "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated",
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated",
    ]


def test_next_fire_from_the_first_pass_of_a_repeated_hour_finds_its_second_pass():
    table = timetable(NYC, ["30 1 * * *"], "shift", "both")

    first = table.next_fire(at("2025-11-02 05:30Z"), inclusive=True)
    second = table.next_fire(at("2025-11-02 05:30Z"))

    assert (
        first is not None and show(first) == "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated"
    )
    assert (
        second is not None and show(second) == "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated"
    )


def test_a_shifted_fire_is_found_inclusively_from_the_transition_instant():
    table = timetable(SYD, ["30 2 * * *"], "shift", "first")

    on_it = table.next_fire(at("2025-10-04 16:00Z"), inclusive=True)
    past_it = table.next_fire(at("2025-10-04 16:00Z"))

    assert on_it is not None and show(on_it) == "2025-10-04 16:00Z = 2025-10-05 03:00+11:00 shifted"
    assert past_it is not None and show(past_it) == "2025-10-05 15:30Z = 2025-10-06 02:30+11:00"


def test_a_seconds_cron_shifts_out_of_a_gap_too():
    table = timetable(LHI, ["15 2 * * * 45"], "shift", "first")

    fire = table.next_fire(at("2025-10-04 12:00Z"))

    assert fire is not None and show(fire) == "2025-10-04 15:30Z = 2025-10-05 02:30+11:00 shifted"
    assert fire.utc.second == 0


def test_a_one_time_run_in_a_gap_or_a_repeated_hour_follows_the_policy():
    def one_time(run_at: str, gap: str, repeat: str) -> list[str]:
        spec = ScheduleSpec(
            time_zone=NYC, run_at=run_at, dst_policy=DstPolicy(gap=gap, repeat=repeat)
        )
        return [show(f) for f in spec.timetable().fires_after(at("2025-01-01 00:00Z"))]

    assert one_time("2025-03-09T02:30", "shift", "first") == [
        "2025-03-09 07:00Z = 2025-03-09 03:00-04:00 shifted"
    ]
    assert one_time("2025-03-09T02:30", "skip", "first") == []
    assert one_time("2025-11-02T01:30", "shift", "last") == [
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated"
    ]
    assert one_time("2025-11-02T01:30", "shift", "both") == [
        "2025-11-02 05:30Z = 2025-11-02 01:30-04:00 repeated",
        "2025-11-02 06:30Z = 2025-11-02 01:30-05:00 repeated",
    ]
