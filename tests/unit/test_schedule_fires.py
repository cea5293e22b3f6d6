"""The pure half of firing: the misfire plan, the overlap decision, the next fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobport.domain.schedules import ScheduleSpec, Timetable
from jobport.domain.schedules.fires import next_fire_at, overlap, plan_fires


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def every_minute() -> Timetable:
    return ScheduleSpec.model_validate(
        {"name": "m", "crons": ["* * * * *"], "timeZone": "UTC"}
    ).timetable()


NOW = utc(2026, 11, 30, 12, 0, 30)
SINCE = utc(2026, 11, 30, 11, 55)  # five fires late, and the one at 12:00 on time


def plan(policy: str, *, grace: float = 60, window: float = 0, cap: int = 100):
    return plan_fires(
        every_minute(), SINCE, NOW, policy=policy, grace=grace, catchup_window=window, cap=cap
    )


def minutes(fires) -> list[int]:
    return [f.utc.minute for f in fires]


def test_skip_runs_only_the_fires_within_grace_and_records_the_others_missed() -> None:
    result = plan("skip")
    assert minutes(result.run) == [0]
    assert minutes(f for f, _ in result.missed) == [55, 56, 57, 58, 59]
    assert {why for _, why in result.missed} == {"misfire_skip"}
    assert result.next_fire is not None and result.next_fire.utc == utc(2026, 11, 30, 12, 1)
    assert result.newest == utc(2026, 11, 30, 12, 0)


def test_run_once_runs_the_newest_due_fire_only() -> None:
    result = plan("runOnce")
    assert minutes(result.run) == [0]
    assert minutes(f for f, _ in result.missed) == [55, 56, 57, 58, 59]
    assert {why for _, why in result.missed} == {"misfire_run_once"}


def test_run_all_runs_what_is_inside_the_catch_up_window() -> None:
    result = plan("runAll", window=150)  # 11:58:00 onwards
    assert minutes(result.run) == [58, 59, 0]
    assert minutes(f for f, _ in result.missed) == [55, 56, 57]
    assert {why for _, why in result.missed} == {"misfire_run_all_outside_window"}


def test_nothing_due_plans_nothing_and_names_the_next_fire() -> None:
    result = plan_fires(
        every_minute(),
        NOW + timedelta(seconds=1),
        NOW,
        policy="skip",
        grace=60,
        catchup_window=0,
        cap=100,
    )
    assert (result.run, result.missed, result.newest) == ([], [], None)
    assert result.next_fire is not None and result.next_fire.utc == utc(2026, 11, 30, 12, 1)


def test_past_the_cap_the_last_missed_record_says_more_were_missed() -> None:
    result = plan("skip", cap=3)
    assert minutes(result.run) == [0]  # the on-time fire is still found past the cap
    assert minutes(f for f, _ in result.missed) == [55, 56, 57]
    assert "more than 3 fires due at once" in result.missed[-1][1]
    assert result.next_fire is not None and result.next_fire.utc == utc(2026, 11, 30, 12, 1)


def test_run_once_past_the_cap_still_runs_the_newest_fire() -> None:
    result = plan("runOnce", cap=3)
    assert [f.utc for f in result.run] == [utc(2026, 11, 30, 12, 0)]


@pytest.mark.parametrize(
    ("policy", "active", "full", "decision"),
    [
        ("allow", True, False, "start"),
        ("skip", False, False, "start"),
        ("skip", True, False, "overlap"),
        ("bufferOne", True, False, "buffer"),
        ("bufferOne", True, True, "buffer_full"),
        ("bufferOne", False, True, "start"),
        ("cancelPrevious", True, False, "cancel_previous"),
        ("cancelPrevious", False, False, "start"),
    ],
)
def test_the_overlap_policy(policy: str, active: bool, full: bool, decision: str) -> None:
    assert overlap(policy, previous_active=active, buffer_full=full) == decision


def test_the_next_fire_never_repeats_one_already_fired() -> None:
    table = every_minute()
    fired = utc(2026, 11, 30, 12, 5)
    # a clock that went back: the next fire is still after the newest one fired
    assert next_fire_at(table, fired, utc(2026, 11, 30, 12, 0, 30), 60) == utc(2026, 11, 30, 12, 6)
    assert next_fire_at(table, None, NOW, 60) == utc(2026, 11, 30, 12, 1)


def test_a_due_fire_no_scheduler_handled_is_kept_for_the_misfire_policy() -> None:
    table = every_minute()
    due = utc(2026, 11, 30, 11, 58)
    assert next_fire_at(table, None, NOW, 60, due_since=due) == due
