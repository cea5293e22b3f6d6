"""Firing with a fake clock: on time, misfires, overlaps, one-time, dates, updates."""

from __future__ import annotations

import datetime as dt

import pytest

from jobport.domain.schedules import MAX_CATCHUP_WINDOW
from jobport.errors import Invalid
from jobport.services import firing
from jobport.services import jobs as job_service
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime

from .conftest import T0, Harness, make_runtime


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 2) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second, tzinfo=dt.UTC)


def outcomes(h: Harness) -> list[tuple[str, str, str | None]]:
    return [(f["fire_at"].strftime("%H:%M"), f["outcome"], f["reason"]) for f in h.fires()]


def test_a_due_schedule_fires_once_with_its_parameters_and_advances(h: Harness) -> None:
    h.put(parameters={"day": "monday"}, mode="delta")
    assert h.get().next_fire_at == at(10, 5)
    assert h.tick_at(at(10, 4, 59)) == 0
    assert h.tick_at(at(10, 5)) == 1
    assert h.tick_at(at(10, 5, 30)) == 0  # the same fire is never started twice

    [run] = h.runs()
    assert run["trigger"] == "schedule"
    assert (run["schedule_name"], run["schedule_fire_at"]) == ("s", at(10, 5))
    assert run["parameters"] == {"day": "monday"}
    assert run["mode"] == "delta"
    [fire] = h.fires()
    assert (fire["outcome"], fire["execution_id"], fire["kind"]) == (
        "started",
        run["id"],
        "schedule",
    )
    schedule = h.get()
    assert (schedule.next_fire_at, schedule.last_fire_at) == (at(10, 10), at(10, 5))
    assert schedule.state == "active"


def test_a_late_tick_within_the_grace_still_runs_the_fire(h: Harness) -> None:
    h.put(misfirePolicy="skip")
    h.tick_at(at(10, 5, 50))  # 50 s late, grace is 60 s
    assert outcomes(h) == [("10:05", "started", None)]


def test_misfire_skip_records_the_missed_fires_and_runs_only_the_on_time_one(h: Harness) -> None:
    h.put(misfirePolicy="skip", overlapPolicy="allow")
    h.tick_at(at(11, 0, 30))  # down since 10:00: 10:05 .. 10:55 are over a minute late
    assert outcomes(h) == [
        *[(f"10:{m:02d}", "missed", "misfire_skip") for m in range(5, 60, 5)],
        ("11:00", "started", None),
    ]
    assert len(h.runs()) == 1


def test_misfire_run_once_runs_the_newest_missed_fire_only(h: Harness) -> None:
    h.put(misfirePolicy="runOnce")
    h.tick_at(at(11, 3))
    assert outcomes(h) == [
        *[(f"10:{m:02d}", "missed", "misfire_run_once") for m in range(5, 60, 5)],
        ("11:00", "started", None),
    ]
    [run] = h.runs()
    assert run["schedule_fire_at"] == at(11, 0)
    assert h.get().next_fire_at == at(11, 5)


def test_misfire_run_all_runs_each_fire_within_the_catchup_window(h: Harness) -> None:
    h.put(misfirePolicy="runAll", catchupWindow=900, overlapPolicy="allow")
    h.tick_at(at(11, 3))  # the window reaches back to 10:48
    assert outcomes(h) == [
        *[(f"10:{m:02d}", "missed", "misfire_run_all_outside_window") for m in range(5, 50, 5)],
        ("10:50", "started", None),
        ("10:55", "started", None),
        ("11:00", "started", None),
    ]
    assert [r["schedule_fire_at"] for r in h.runs()] == [at(10, 50), at(10, 55), at(11, 0)]


def test_misfire_run_all_with_the_widest_catchup_window_runs_every_missed_fire(
    h: Harness,
) -> None:
    h.put(misfirePolicy="runAll", catchupWindow=MAX_CATCHUP_WINDOW, overlapPolicy="allow")
    h.tick_at(at(11, 3))
    assert outcomes(h) == [
        *[(f"10:{m:02d}", "started", None) for m in range(5, 60, 5)],
        ("11:00", "started", None),
    ]
    assert h.get().next_fire_at == at(11, 5)


def test_missed_fires_are_recorded_one_by_one_only_up_to_a_cap(tmp_path: object) -> None:
    rt = make_runtime(tmp_path, scheduler_missed_record_cap=20)  # type: ignore[arg-type]
    h = _harness(rt)
    h.put(crons=["* * * * *"], misfirePolicy="runOnce")
    h.tick_at(T0 + dt.timedelta(days=2, seconds=5))  # 2880 fires missed
    fires = h.fires()
    missed = [f for f in fires if f["outcome"] == "missed"]
    assert len(missed) == 20
    assert "not recorded one by one" in missed[-1]["reason"]
    [started] = [f for f in fires if f["outcome"] == "started"]
    assert started["fire_at"] == T0 + dt.timedelta(days=2)  # the newest one, not the 21st
    assert h.get().next_fire_at == T0 + dt.timedelta(days=2, minutes=1)
    rt.db.dispose()


def _harness(rt: Runtime) -> Harness:
    from store.rows import add_job, add_project

    with rt.db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)
    return Harness(rt, job, project)


# -- overlap -------------------------------------------------------------------------------


def test_overlap_skip_records_the_fire_skipped_while_the_last_run_is_active(h: Harness) -> None:
    h.put(overlapPolicy="skip")
    h.tick_at(at(10, 5))
    h.tick_at(at(10, 10))
    h.finish_all()
    h.tick_at(at(10, 15))
    assert outcomes(h) == [
        ("10:05", "started", None),
        ("10:10", "skipped", "overlap"),
        ("10:15", "started", None),
    ]


def test_overlap_allow_starts_alongside_the_last_run(h: Harness) -> None:
    h.put(overlapPolicy="allow")
    h.tick_at(at(10, 5))
    h.tick_at(at(10, 10))
    assert [r["status"] for r in h.runs()] == ["queued", "queued"]


def test_overlap_buffer_one_holds_one_fire_until_the_last_run_ends(h: Harness) -> None:
    h.put(overlapPolicy="bufferOne")
    h.tick_at(at(10, 5))
    h.tick_at(at(10, 10))
    h.tick_at(at(10, 15))
    assert outcomes(h) == [
        ("10:05", "started", None),
        ("10:10", "buffered", None),
        ("10:15", "skipped", "buffer_full"),
    ]
    h.tick_at(at(10, 16))
    assert len(h.runs()) == 1  # the first run still runs: the buffered fire waits

    h.finish_all()
    h.tick_at(at(10, 17))
    released = h.fires()[1]
    assert released["outcome"] == "started"
    runs = h.runs()
    assert [r["schedule_fire_at"] for r in runs] == [at(10, 5), at(10, 10)]
    assert released["execution_id"] == runs[1]["id"]


def test_overlap_cancel_previous_cancels_the_last_run_then_starts(h: Harness) -> None:
    h.put(overlapPolicy="cancelPrevious")
    h.tick_at(at(10, 5))
    h.tick_at(at(10, 10))
    first, second = h.runs()
    assert first["status"] == "cancelled"  # it was still queued: cancelled outright
    assert second["status"] == "queued"
    assert [f["outcome"] for f in h.fires()] == ["started", "started"]


# -- kinds of schedule ---------------------------------------------------------------------


def test_a_one_time_schedule_fires_once_then_is_inactive(h: Harness) -> None:
    h.put(crons=None, runAt="2026-03-02T10:30:00")
    assert h.get().state == "active"
    h.tick_at(at(10, 30))
    h.tick_at(at(12, 0))
    assert outcomes(h) == [("10:30", "started", None)]
    schedule = h.get()
    assert (schedule.state, schedule.next_fire_at) == ("inactive", None)


def test_a_run_at_in_the_past_is_refused_unless_the_schedule_fired_at_it(h: Harness) -> None:
    # 10:00 in Berlin (UTC+1 in March) was 09:00 UTC; the clock says 10:00 UTC.
    with pytest.raises(Invalid) as refused:
        h.put("late", crons=None, runAt="2026-03-02T10:00", timeZone="Europe/Berlin")
    assert refused.value.code == "invalid_schedule"
    assert refused.value.details == [{"field": "runAt", "reason": "in the past"}]
    assert refused.value.message.startswith(
        "runAt 2026-03-02T10:00 (Europe/Berlin) is in the past; it is 2026-03-02T11:00 there now"
    )
    # Asked for "now", it arrives a moment late (within the misfire grace): it still fires.
    h.put("now", crons=None, runAt="2026-03-02T09:59:30")
    h.put(crons=None, runAt="2026-03-02T10:30:00")
    h.tick_at(at(10, 30))
    assert outcomes(h) == [("09:59", "started", None), ("10:30", "started", None)]

    # An update of a schedule that fired at that time simply ends it, as before.
    h.clock.set(at(11))
    updated = h.put(crons=None, runAt="2026-03-02T10:30:00", parameters={"day": "friday"})
    assert (updated.state, updated.next_fire_at) == ("inactive", None)
    # Another past time it never fired at is refused, and the schedule is left as it was.
    with pytest.raises(Invalid, match=r"runAt 2026-03-02T10:15:00 \(UTC\) is in the past"):
        h.put(crons=None, runAt="2026-03-02T10:15:00")
    assert h.get().definition["parameters"] == {"day": "friday"}
    assert len(h.runs()) == 2


def test_start_and_end_dates_bound_the_fires_then_the_schedule_ends(h: Harness) -> None:
    h.put(crons=["0 * * * *"], startDate="2026-03-02T12:00:00", endDate="2026-03-02T14:00:00")
    assert h.get().next_fire_at == at(12)
    for hour in range(10, 17):
        h.tick_at(at(hour))
    assert [f["fire_at"].hour for f in h.fires()] == [12, 13, 14]
    assert h.get().state == "ended"


def test_a_disabled_schedule_does_not_fire(h: Harness) -> None:
    h.put(enabled=False)
    assert h.get().state == "disabled"
    assert h.tick_at(at(11)) == 0
    assert h.fires() == []


def test_coinciding_crons_fire_once(h: Harness) -> None:
    h.put(crons=["0 * * * *", "*/30 * * * *", "0 10-12 * * *"], overlapPolicy="allow")
    h.tick_at(at(10, 30, 1))
    h.tick_at(at(11, 0, 1))
    assert outcomes(h) == [("10:30", "started", None), ("11:00", "started", None)]
    assert len(h.runs()) == 2


def test_an_update_keeps_identity_and_history_and_never_refires(h: Harness) -> None:
    first = h.put(overlapPolicy="allow")
    h.tick_at(at(10, 5))
    # The update comes with a clock behind the last fire: 10:05 must still not fire again.
    h.clock.set(at(10, 4))
    second = h.put(crons=["*/5 * * * *", "5 10 * * *"], overlapPolicy="allow")
    assert second.id == first.id
    assert second.last_fire_at == at(10, 5)
    assert second.next_fire_at == at(10, 10)
    h.tick_at(at(10, 10))
    assert [f["fire_at"] for f in h.fires()] == [at(10, 5), at(10, 10)]


def test_an_update_while_a_fire_is_due_leaves_it_to_the_scheduler(h: Harness) -> None:
    h.put(overlapPolicy="allow")
    # 10:05 is due, and the scheduler has not ticked yet: the update must not drop it.
    h.clock.set(at(10, 5) + dt.timedelta(milliseconds=300))
    h.put(overlapPolicy="allow", parameters={"day": "friday"})
    assert h.get().next_fire_at == at(10, 5)
    h.tick_at(at(10, 5, 1))
    assert outcomes(h) == [("10:05", "started", None)]
    assert [r["parameters"] for r in h.runs()] == [{"day": "friday"}]


def test_an_update_during_downtime_keeps_the_missed_fires_for_the_misfire_policy(
    h: Harness,
) -> None:
    h.put()  # runOnce
    h.clock.set(at(11, 0, 30))  # no scheduler ran since 10:00
    h.put(parameters={"day": "friday"})
    h.tick_at(at(11, 1))
    assert outcomes(h) == [
        *[(f"10:{m:02d}", "missed", "misfire_run_once") for m in range(5, 60, 5)],
        ("11:00", "started", None),
    ]


def test_disabling_then_enabling_does_not_fire_the_times_in_between(h: Harness) -> None:
    h.put()
    h.clock.set(at(10, 1))
    h.put(enabled=False)
    h.clock.set(at(11, 2))
    h.put(enabled=True)
    assert h.get().next_fire_at == at(11, 5)
    h.tick_at(at(11, 5))
    assert outcomes(h) == [("11:05", "started", None)]


def test_deleting_the_job_deletes_its_schedules_and_their_fires(h: Harness) -> None:
    h.put()
    h.tick_at(at(10, 5))
    h.finish_all()
    job_service.delete(h.rt, h.project["id"], h.job["id"])
    assert h.fires() == []
    assert h.tick_at(at(11)) == 0


def test_a_change_wakes_the_scheduler(h: Harness) -> None:
    woken: list[bool] = []
    unsubscribe = firing.on_change(lambda: woken.append(True))
    try:
        h.put()
        schedule_service.delete(h.rt, h.project["id"], h.job["id"], "s")
    finally:
        unsubscribe()
    assert woken == [True, True]


@pytest.mark.parametrize("policy", ["skip", "runOnce", "runAll"])
def test_no_fire_is_lost_or_doubled_by_any_misfire_policy(h: Harness, policy: str) -> None:
    h.put(misfirePolicy=policy, overlapPolicy="allow", catchupWindow=600)
    for minute in (7, 31, 33, 58):
        h.tick_at(at(10, minute))
    h.tick_at(at(11, 30))
    times = [f["fire_at"] for f in h.fires()]
    assert times == sorted(set(times))
    assert times == [at(10, m) for m in range(5, 60, 5)] + [at(11, m) for m in range(0, 31, 5)]
