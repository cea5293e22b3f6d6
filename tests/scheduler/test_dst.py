"""Across DST transitions, the preview shows exactly the fires the scheduler then makes."""

from __future__ import annotations

import datetime as dt

import pytest

from jobport.services import schedules as schedule_service

from .conftest import Harness

CASES = [
    # Lord Howe moves by half an hour: back on 2026-04-05 at 02:00, forward on 2026-10-04.
    ("Australia/Lord_Howe", "*/15 * * * *", dt.datetime(2026, 4, 4, 12, 0, tzinfo=dt.UTC), 96),
    ("Australia/Lord_Howe", "*/15 * * * *", dt.datetime(2026, 10, 3, 12, 0, tzinfo=dt.UTC), 96),
    # Sydney's 02:30 happens twice on 2026-04-05 and not at all on 2026-10-04.
    ("Australia/Sydney", "30 2 * * *", dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC), 8),
    ("Australia/Sydney", "30 2 * * *", dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.UTC), 8),
]


@pytest.mark.parametrize(("zone", "cron", "start", "count"), CASES)
@pytest.mark.parametrize("tick_every", [None, dt.timedelta(minutes=7)], ids=["on-time", "late"])
def test_preview_agrees_with_what_fires(
    h: Harness,
    zone: str,
    cron: str,
    start: dt.datetime,
    count: int,
    tick_every: dt.timedelta | None,
) -> None:
    h.clock.set(start)
    h.put(
        crons=[cron],
        timeZone=zone,
        overlapPolicy="allow",
        misfirePolicy="runAll",
        catchupWindow=86_400,
    )
    preview = schedule_service.preview(
        h.rt, h.project["id"], h.job["id"], "s", count=count, start=start
    )
    end = preview[-1].utc
    if tick_every is None:  # wake exactly at each next fire, as the loop does
        while (due := h.get().next_fire_at) is not None and due <= end:
            h.tick_at(due)
    else:  # a scheduler that looks in at odd moments catches up on what it missed
        now = start
        while now < end:
            now = min(now + tick_every, end)
            h.tick_at(now)
    fired = [(f["fire_at"], f["local"], f["dst"]) for f in h.fires()]
    assert fired == [(f.utc, f.local.isoformat(), f.dst) for f in preview]


def test_sydney_half_past_two_fires_once_on_both_transition_days(h: Harness) -> None:
    h.clock.set(dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    h.put(crons=["30 2 * * *"], timeZone="AUS Eastern Standard Time", overlapPolicy="allow")

    def preview(start: dt.datetime) -> list[schedule_service.Fire]:
        return schedule_service.preview(
            h.rt, h.project["id"], h.job["id"], "s", count=7, start=start
        )

    autumn = preview(dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    spring = preview(dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    back = [f for f in autumn if f.local.date() == dt.date(2026, 4, 5)]
    assert [(f.local.isoformat(), f.dst) for f in back] == [
        ("2026-04-05T02:30:00+11:00", "repeated")  # the first of the two 02:30s
    ]
    forward = [f for f in spring if f.local.date() == dt.date(2026, 10, 4)]
    assert [(f.local.isoformat(), f.dst) for f in forward] == [
        ("2026-10-04T03:00:00+11:00", "shifted")  # 02:30 does not exist: at the transition
    ]
