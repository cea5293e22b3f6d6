"""Which fires run: a schedule's next fire, the misfire plan, the overlap decision, the record.

The pure half of schedule firing. services/firing.py holds the other half: the transaction
that reads the schedules, records each fire once, starts its run and advances the schedule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from jobport.domain.ids import new_id
from jobport.domain.schedules.timetable import Fire, Timetable

# How far back to look for the newest missed fire when too many were missed to list them.
_LOOKBACK = (60, 3600, 86_400, 31 * 86_400, 366 * 86_400, 10 * 366 * 86_400)

# -- where a defined schedule stands -------------------------------------------------------


def next_fire_at(
    timetable: Timetable,
    last_fire_at: dt.datetime | None,
    now: dt.datetime,
    grace: float,
    *,
    due_since: dt.datetime | None = None,
) -> dt.datetime | None:
    """The first fire after both `now` and the newest time already fired: never a repeat.

    `due_since`: the stored next fire, when it is due and no scheduler has handled it yet
    (late, or down). Fires from then on are kept for the misfire policy instead of being
    dropped unrecorded by the update. Whether the schedule is enabled is the caller's matter.
    """
    if last_fire_at is None and timetable.run_at is not None:
        # A one-time run asked for "now" reaches us a moment late: still fire it.
        fire = timetable.next_fire(now - dt.timedelta(seconds=grace), inclusive=True)
    else:
        fire = timetable.next_fire(max(now, last_fire_at) if last_fire_at else now)
    if due_since is not None:
        if last_fire_at is not None and last_fire_at >= due_since:
            pending = timetable.next_fire(last_fire_at)
        else:
            pending = timetable.next_fire(due_since, inclusive=True)
        if pending is not None and (fire is None or pending.utc < fire.utc):
            fire = pending
    return fire.utc if fire else None


# -- the misfire policy: which due fires run ----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What to do with the fires a schedule has due."""

    run: list[Fire]
    missed: list[tuple[Fire, str]]
    next_fire: Fire | None
    newest: dt.datetime | None  # the newest nominal time handled (run or missed)


def plan_fires(
    timetable: Timetable,
    since: dt.datetime,
    now: dt.datetime,
    *,
    policy: str,
    grace: float,
    catchup_window: float,
    cap: int,
) -> Plan:
    """Sort the fires due in [since, now] into those to run and those missed.

    A fire more than `grace` seconds old is a misfire (the scheduler was down or late):
    `skip` records it missed; `runOnce` runs only the newest due fire and records the others
    missed; `runAll` runs those within `catchup_window` and records older ones missed. At most
    `cap` fires are looked at one by one; the last one recorded says if more were missed.
    """
    head: list[Fire] = []
    next_fire: Fire | None = None
    more = False
    for fire in timetable.fires_after(since, inclusive=True):
        if fire.utc > now:
            next_fire = fire
            break
        if len(head) == cap:
            more = True
            break
        if not head or fire.utc != head[-1].utc:
            head.append(fire)
    if not head:
        return Plan([], [], next_fire, None)
    if more:
        next_fire = timetable.next_fire(now)
    on_time_from = now - dt.timedelta(seconds=grace)
    window_from = now - dt.timedelta(seconds=max(grace, catchup_window))
    late = any(f.utc < on_time_from for f in head)
    if policy == "runOnce" and (late or more):
        newest = _newest_fire(timetable, head[-1].utc, now) if more else None
        run = [newest or head[-1]]
        missed = [f for f in head if f.utc != run[0].utc]
        reason = "misfire_run_once"
    else:
        cut = window_from if policy == "runAll" else on_time_from
        run = [f for f in head if f.utc >= cut]
        missed = [f for f in head if f.utc < cut]
        reason = "misfire_run_all_outside_window" if policy == "runAll" else "misfire_skip"
        if more:
            run += [
                f
                for f in timetable.fires_between(max(head[-1].utc, cut), now)
                if f.utc > head[-1].utc
            ]
    records = [(f, reason) for f in missed]
    if more and records:
        last, why = records[-1]
        records[-1] = (
            last,
            f"{why}; more than {cap} fires due at once: later missed fires up to "
            f"{now.isoformat(timespec='seconds')} are not recorded one by one",
        )
    newest_time = max([f.utc for f in run] + [head[-1].utc])
    return Plan(run, records, next_fire, newest_time)


def _newest_fire(timetable: Timetable, after: dt.datetime, now: dt.datetime) -> Fire | None:
    """The newest fire in (after, now], found without walking every fire since `after`."""
    for seconds in _LOOKBACK:
        start = max(after, now - dt.timedelta(seconds=seconds))
        newest = None
        for fire in timetable.fires_after(start):
            if fire.utc > now:
                break
            newest = fire
        if newest is not None or start == after:
            return newest
    return None


# -- the overlap policy: what a fire does while the schedule's previous run is active --------

Overlap = Literal["start", "cancel_previous", "buffer", "overlap", "buffer_full"]


def overlap(policy: str, *, previous_active: bool, buffer_full: bool) -> Overlap:
    """What the overlap policy does with a fire: `start` its run (`cancel_previous`: after
    cancelling the previous runs), `buffer` it until they end, or skip it, the reason being
    `overlap` or `buffer_full` (a fire of the schedule is buffered already)."""
    if previous_active and policy == "skip":
        return "overlap"
    if previous_active and policy == "bufferOne":
        return "buffer_full" if buffer_full else "buffer"
    if previous_active and policy == "cancelPrevious":
        return "cancel_previous"
    return "start"


# -- the record of one fire, as the store keeps it ----------------------------------------------


def fire_row(
    schedule: dict[str, Any],
    fire: Fire,
    *,
    kind: str,
    outcome: str,
    now: dt.datetime,
    reason: str | None = None,
    execution_id: str | None = None,
) -> dict[str, Any]:
    """The row of one fire of `schedule` (a stored schedule row): what it did, and why."""
    return {
        "id": new_id(),
        "schedule_id": schedule["id"],
        "fire_at": fire.utc,
        "local": fire.local.isoformat(),
        "dst": fire.dst,
        "kind": kind,
        "outcome": outcome,
        "reason": reason[:300] if reason else None,
        "execution_id": execution_id,
        "recorded_at": now,
    }
