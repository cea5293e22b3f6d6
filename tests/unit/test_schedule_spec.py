"""Schedule specs: what is accepted, what is refused and why, and when an accepted one fires."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from jobport.domain.schedules import (
    DstPolicy,
    ScheduleSpec,
    Timetable,
    check_cron,
    resolve_time_zone,
    timetable_for,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def spec(**body) -> ScheduleSpec:
    return ScheduleSpec.model_validate(body)


def errors(**body) -> list[tuple[str, str]]:
    """(field path, reason) for each error, the way the service reports them."""
    with pytest.raises(ValidationError) as caught:
        ScheduleSpec.model_validate(body)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


def only_error(**body) -> tuple[str, str]:
    found = errors(**body)
    assert len(found) == 1, found
    return found[0]


def next_utc(table: Timetable, after: datetime) -> datetime | None:
    fire = table.next_fire(after)
    return fire.utc if fire else None


# -- accepted specs -----------------------------------------------------------------------


def test_the_issue_example_is_accepted_and_echoed_in_camel_case():
    body = {
        "name": "My Schedule",
        "timeZone": "AUS Eastern Standard Time",
        "startDate": "2023-09-04",
        "endDate": None,
        "enabled": True,
        "crons": ["0 10 * * *"],
    }

    accepted = ScheduleSpec.model_validate(body)

    assert accepted.wire() == body | {
        "runAt": None,
        "parameters": {},
        "mode": "full",
        "dstPolicy": {"gap": "shift", "repeat": "first"},
        "misfirePolicy": "runOnce",
        "catchupWindow": 3600,
        "overlapPolicy": "skip",
    }
    assert accepted.timetable().iana == "Australia/Sydney"
    # 10:00 in Sydney (AEST, +10) on the start date
    assert next_utc(accepted.timetable(), utc(2023, 1, 1)) == utc(2023, 9, 4, 0, 0)


def test_a_spec_round_trips_through_its_wire_form():
    original = spec(
        timeZone="Europe/London",
        crons=["0 6 * * MON-FRI", "@monthly"],
        parameters={"region": "emea", "limit": 5},
        mode="delta",
        dstPolicy={"gap": "skip", "repeat": "both"},
        misfirePolicy="runAll",
        catchupWindow=90.5,
        overlapPolicy="cancelPrevious",
        startDate="2025-01-01T08:30",
        endDate="2025-12-31",
    )

    assert ScheduleSpec.model_validate(original.wire()) == original
    assert ScheduleSpec.model_validate_json(json.dumps(original.wire())) == original


@pytest.mark.parametrize(
    ("given", "iana"),
    [
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("Eastern Standard Time", "America/New_York"),
        ("GMT Standard Time", "Europe/London"),
        ("Lord Howe Standard Time", "Australia/Lord_Howe"),
        ("Australia/Sydney", "Australia/Sydney"),
        ("UTC", "UTC"),
        ("australia/sydney", "Australia/Sydney"),
    ],
)
def test_time_zones_resolve_from_iana_and_windows_names(given: str, iana: str):
    assert resolve_time_zone(given) == iana
    accepted = spec(timeZone=given, crons=["0 10 * * *"])
    assert accepted.time_zone == given  # echoed as given
    assert accepted.timetable().iana == iana
    assert accepted.timetable().zone.key == iana


def test_a_windows_zone_fires_like_its_iana_zone():
    windows = spec(timeZone="Eastern Standard Time", crons=["0 9 * * *"]).timetable()

    assert next_utc(windows, utc(2025, 7, 1)) == utc(2025, 7, 1, 13)  # 09:00 EDT
    assert next_utc(windows, utc(2025, 12, 1)) == utc(2025, 12, 1, 14)  # 09:00 EST


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 10 L * *", utc(2025, 2, 1), utc(2025, 2, 28, 10)),  # last day of the month
        ("0 10 L * *", utc(2024, 2, 1), utc(2024, 2, 29, 10)),
        ("0 10 15W * *", utc(2025, 6, 1), utc(2025, 6, 16, 10)),  # the 15th is a Sunday
        ("0 10 * * MON#2", utc(2025, 6, 1), utc(2025, 6, 9, 10)),  # second Monday
        ("0 10 * * 1#2", utc(2025, 6, 10), utc(2025, 7, 14, 10)),
        ("0 10 * * L5", utc(2025, 6, 1), utc(2025, 6, 27, 10)),  # last Friday
        ("0 9 * JAN-MAR MON-FRI", utc(2025, 3, 29), utc(2025, 3, 31, 9)),  # names
        ("0 9 * * sun", utc(2025, 6, 1, 10), utc(2025, 6, 8, 9)),
        ("0 9 ? * 7", utc(2025, 6, 1, 10), utc(2025, 6, 8, 9)),  # 7 is Sunday too
        ("@hourly", utc(2025, 6, 1, 10, 5), utc(2025, 6, 1, 11)),
        ("@daily", utc(2025, 6, 1, 10), utc(2025, 6, 2)),
        ("@midnight", utc(2025, 6, 1, 10), utc(2025, 6, 2)),
        ("@weekly", utc(2025, 6, 2), utc(2025, 6, 8)),  # Sunday midnight
        ("@monthly", utc(2025, 6, 2), utc(2025, 7, 1)),
        ("@yearly", utc(2025, 6, 2), utc(2026, 1, 1)),
        ("@annually", utc(2025, 6, 2), utc(2026, 1, 1)),
        ("@DAILY", utc(2025, 6, 1, 10), utc(2025, 6, 2)),
        ("0 10 1 * MON", utc(2025, 6, 1, 11), utc(2025, 6, 2, 10)),  # day fields: either
        # six fields: seconds are the sixth, last field
        ("0 10 * * * 30", utc(2025, 6, 1), utc(2025, 6, 1, 10, 0, 30)),
        ("* * * * * */20", utc(2025, 6, 1, 10, 0, 20), utc(2025, 6, 1, 10, 0, 40)),
    ],
)
def test_cron_syntax_is_accepted_and_fires_when_it_says(
    cron: str, after: datetime, expected: datetime
):
    check_cron(cron)
    assert next_utc(spec(crons=[cron]).timetable(), after) == expected


def test_several_crons_fire_at_the_union_of_their_times_once_per_instant():
    table = spec(crons=["0 * * * *", "*/30 * * * *", "0 10 * * *"]).timetable()

    fires = table.fires_between(utc(2025, 6, 1, 9, 15), utc(2025, 6, 1, 11))

    assert [f.utc for f in fires] == [
        utc(2025, 6, 1, 9, 30),
        utc(2025, 6, 1, 10),
        utc(2025, 6, 1, 10, 30),
        utc(2025, 6, 1, 11),
    ]
    assert all(f.dst is None for f in fires)


def test_fires_carry_the_local_time_in_the_schedule_zone():
    table = spec(timeZone="Australia/Sydney", crons=["0 10 * * *"]).timetable()

    fire = table.next_fire(utc(2025, 5, 31, 12))

    assert fire is not None
    assert fire.utc == utc(2025, 6, 1, 0) and fire.utc.tzinfo is UTC
    assert fire.local.isoformat() == "2025-06-01T10:00:00+10:00"
    assert fire.dst is None


def test_defaults():
    accepted = spec(crons=["0 10 * * *"])

    assert accepted.time_zone == "UTC"
    assert accepted.enabled is True
    assert accepted.parameters == {}
    assert accepted.mode == "full"
    assert accepted.dst_policy == DstPolicy(gap="shift", repeat="first")
    assert accepted.misfire_policy == "runOnce"
    assert accepted.catchup_window == 3600
    assert accepted.overlap_policy == "skip"


# -- start and end ---------------------------------------------------------------------------


def test_no_fire_before_a_start_date_read_in_the_zone():
    table = spec(timeZone="Australia/Sydney", crons=["0 * * * *"], startDate="2025-06-10")
    # 2025-06-10 00:00 in Sydney is 2025-06-09 14:00Z
    assert next_utc(table.timetable(), utc(2025, 1, 1)) == utc(2025, 6, 9, 14)


def test_a_start_date_time_is_inclusive():
    daily = ["0 10 * * *"]
    assert next_utc(
        spec(crons=daily, startDate="2025-06-10T10:00").timetable(), utc(2025, 1, 1)
    ) == utc(2025, 6, 10, 10)
    assert next_utc(
        spec(crons=daily, startDate="2025-06-10T10:00:01").timetable(), utc(2025, 1, 1)
    ) == utc(2025, 6, 11, 10)


def test_a_date_only_end_date_runs_through_the_end_of_that_day():
    table = spec(
        timeZone="America/New_York", crons=["30 23 * * *"], endDate="2025-06-12"
    ).timetable()

    fires = table.fires_between(utc(2025, 6, 10, 12), utc(2025, 7, 1))

    # 23:30 EDT on the 10th, 11th and 12th, nothing after
    assert [f.utc for f in fires] == [
        utc(2025, 6, 11, 3, 30),
        utc(2025, 6, 12, 3, 30),
        utc(2025, 6, 13, 3, 30),
    ]
    assert not table.ended(utc(2025, 6, 13, 3, 29))
    assert table.ended(utc(2025, 6, 13, 3, 30))


def test_an_end_date_time_is_inclusive():
    daily = ["0 10 * * *"]
    through_ten = spec(crons=daily, endDate="2025-06-12T10:00").timetable()
    before_ten = spec(crons=daily, endDate="2025-06-12T09:59").timetable()

    assert [f.utc for f in through_ten.fires_after(utc(2025, 6, 11))] == [
        utc(2025, 6, 11, 10),
        utc(2025, 6, 12, 10),
    ]
    assert [f.utc for f in before_ten.fires_after(utc(2025, 6, 11))] == [utc(2025, 6, 11, 10)]
    assert through_ten.ended(utc(2025, 6, 12, 10))
    assert not through_ten.ended(utc(2025, 6, 12, 9, 59))


def test_start_and_end_on_the_same_day_fire_within_it():
    table = spec(
        crons=["0 * * * *"], startDate="2025-06-12T22:00", endDate="2025-06-12"
    ).timetable()

    assert [f.utc.hour for f in table.fires_after(utc(2025, 1, 1))] == [22, 23]


def test_a_schedule_without_end_never_ends():
    assert not spec(crons=["0 0 1 1 *"]).timetable().ended(utc(2099, 6, 1))


@pytest.mark.parametrize("zone", ["Australia/Sydney", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_ends_of_representable_time_give_fires_or_none_but_never_an_error(zone: str):
    table = spec(crons=["10 1 * * *"], timeZone=zone).timetable()
    first = table.next_fire(datetime(1, 1, 1, 1, 10, 7, tzinfo=UTC))
    assert first is not None and first.utc.year == 3
    assert table.next_fire(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) is None
    assert len(table.fires_between(utc(9999, 12, 25), datetime.max.replace(tzinfo=UTC))) <= 7


# -- one-time runs ---------------------------------------------------------------------------


def test_run_at_fires_once_in_its_zone_then_never():
    table = spec(timeZone="Australia/Sydney", runAt="2025-06-12T09:30").timetable()

    fire = table.next_fire(utc(2025, 1, 1))

    assert fire is not None
    assert fire.utc == utc(2025, 6, 11, 23, 30)
    assert fire.local.isoformat() == "2025-06-12T09:30:00+10:00"
    assert table.next_fire(fire.utc) is None
    assert table.next_fire(fire.utc, inclusive=True) == fire
    assert list(table.fires_after(utc(2025, 1, 1))) == [fire]
    assert not table.ended(utc(2025, 6, 11, 23, 29))
    assert table.ended(fire.utc)
    assert table.ended(utc(2030, 1, 1))


def test_run_at_outside_start_and_end_never_fires():
    table = spec(runAt="2025-06-12T09:30", endDate="2025-06-11").timetable()

    assert table.next_fire(utc(2025, 1, 1)) is None
    assert table.ended(utc(2025, 1, 1))


# -- fires_between and inclusive -------------------------------------------------------------


def test_fires_between_excludes_its_start_and_includes_its_end():
    table = spec(crons=["0 * * * *"]).timetable()

    fires = table.fires_between(utc(2025, 6, 1, 10), utc(2025, 6, 1, 13))

    assert [f.utc for f in fires] == [utc(2025, 6, 1, 11), utc(2025, 6, 1, 12), utc(2025, 6, 1, 13)]


def test_fires_between_stops_at_its_limit():
    table = spec(crons=["* * * * *"]).timetable()

    fires = table.fires_between(utc(2025, 6, 1), utc(2025, 6, 2), limit=5)

    assert [f.utc.minute for f in fires] == [1, 2, 3, 4, 5]
    assert table.fires_between(utc(2025, 6, 1), utc(2025, 6, 2), limit=0) == []
    assert table.fires_between(utc(2025, 6, 2), utc(2025, 6, 1)) == []


def test_next_fire_is_strictly_after_unless_inclusive():
    table = spec(crons=["0 10 * * *"]).timetable()

    assert next_utc(table, utc(2025, 6, 1, 10)) == utc(2025, 6, 2, 10)
    assert table.next_fire(utc(2025, 6, 1, 10), inclusive=True).utc == utc(2025, 6, 1, 10)
    assert table.next_fire(utc(2025, 6, 1, 9, 59, 59, 999999)).utc == utc(2025, 6, 1, 10)
    assert table.next_fire(utc(2025, 6, 1, 10, 0, 0, 1), inclusive=True).utc == utc(2025, 6, 2, 10)


def test_after_may_be_in_any_zone_but_must_be_aware():
    table = spec(crons=["0 10 * * *"]).timetable()
    sydney = datetime(2025, 6, 1, 20, tzinfo=resolve_zone("Australia/Sydney"))  # 10:00Z

    assert next_utc(table, sydney) == utc(2025, 6, 2, 10)
    with pytest.raises(ValueError, match="time zone"):
        table.next_fire(datetime(2025, 6, 1))


def resolve_zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_fires_after_keeps_going():
    table = spec(crons=["0 0 * * *", "0 12 * * *"]).timetable()

    fires = table.fires_after(utc(2025, 12, 30))

    assert [next(fires).utc for _ in range(5)] == [
        utc(2025, 12, 30, 12),
        utc(2025, 12, 31),
        utc(2025, 12, 31, 12),
        utc(2026, 1, 1),
        utc(2026, 1, 1, 12),
    ]


def test_the_timetable_is_compiled_once_per_spec_and_shared_by_equal_specs():
    accepted = spec(timeZone="Australia/Sydney", crons=["0 10 * * *"])
    twin = spec(timeZone="Australia/Sydney", crons=["0 10 * * *"])

    assert accepted.timetable() is accepted.timetable()
    assert twin.timetable() is accepted.timetable()
    assert timetable_for(json.dumps(accepted.wire())) is accepted.timetable()


# -- refused specs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("61 * * * *", "'61 * * * *' is not valid"),
        ("0 25 * * *", "'0 25 * * *' is not valid"),
        ("0 10 * *", "has 4 fields; expected 5 fields"),
        ("0 10 * * * 0 2030", "has 7 fields"),
        ("0 0 30 2 *", "'0 0 30 2 *' never matches a date"),
        ("0 0 31 4,6,9,11 *", "never matches a date"),
        ("0 10 * * FUNDAY", "'0 10 * * FUNDAY' is not valid"),
        ("0 10 * * MON#6", "is not valid"),
        ("H 10 * * *", "minute field 'H' is hashed or random"),
        ("0 R * * *", "hour field 'R' is hashed or random"),
        ("@reboot", "unknown macro"),
        ("", "cron is empty"),
        ("   ", "cron is empty"),
    ],
)
def test_an_invalid_cron_is_refused_naming_its_position_and_reason(cron: str, reason: str):
    field, message = only_error(crons=["0 10 * * *", cron])

    assert field == "crons.1"
    assert reason in message
    with pytest.raises(ValueError, match="cron"):
        check_cron(cron)


def test_an_unknown_time_zone_is_refused():
    field, message = only_error(timeZone="Mars/Olympus_Mons", crons=["0 10 * * *"])

    assert field == "timeZone"
    assert "unknown time zone 'Mars/Olympus_Mons'" in message
    with pytest.raises(ValueError, match="unknown time zone"):
        resolve_time_zone("AUS Eastern Daylight Time")
    for bad in ("", "../etc/passwd", "/etc/localtime", "America"):
        with pytest.raises(ValueError, match="unknown time zone"):
            resolve_time_zone(bad)


def test_an_end_before_the_start_is_refused():
    field, message = only_error(crons=["0 10 * * *"], startDate="2023-09-04", endDate="2023-09-03")

    assert field == "endDate"
    assert "before startDate" in message
    # a date-only end runs through its day, so it may share the start's date
    spec(crons=["0 10 * * *"], startDate="2023-09-04T10:00", endDate="2023-09-04")
    assert (
        only_error(crons=["0 10 * * *"], startDate="2023-09-04T10:00", endDate="2023-09-04T09:59")[
            0
        ]
        == "endDate"
    )


def test_crons_and_run_at_are_exclusive_and_one_is_needed():
    assert only_error(crons=[]) == (
        "crons",
        "Value error, crons is empty; give at least one cron expression, or runAt instead",
    )
    field, message = only_error(crons=["0 10 * * *"], runAt="2025-06-12T09:30")
    assert field == "crons" and "not both" in message
    field, message = only_error(timeZone="UTC")
    assert field == "crons" and "runAt" in message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("startDate", "04/09/2023", "is not YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"),
        ("startDate", "2023-02-30", "is not a valid date"),
        ("startDate", "2023-09-04T10:00+10:00", "carries a UTC offset"),
        ("endDate", "2023-09-04T10:00Z", "carries a UTC offset"),
        ("endDate", "2023-09-04T25:00", "is not a valid date or time"),
        ("runAt", "2025-06-12", "has no time of day"),
        ("runAt", "tomorrow", "is not YYYY-MM-DD"),
    ],
)
def test_a_bad_local_date_is_refused(field: str, value: str, reason: str):
    body = {"crons": ["0 10 * * *"]} if field != "runAt" else {}
    where, message = only_error(**body, **{field: value})

    assert where == field
    assert reason in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"misfirePolicy": "sometimes"}, "misfirePolicy"),
        ({"overlapPolicy": "queue"}, "overlapPolicy"),
        ({"mode": "partial"}, "mode"),
        ({"dstPolicy": {"gap": "wait"}}, "dstPolicy.gap"),
        ({"dstPolicy": {"repeat": "never"}}, "dstPolicy.repeat"),
        ({"catchupWindow": 0}, "catchupWindow"),
        ({"catchupWindow": -5}, "catchupWindow"),
        ({"catchupWindow": 1e12}, "catchupWindow"),
        ({"catchupWindow": float("inf")}, "catchupWindow"),
        ({"cronz": ["0 10 * * *"]}, "cronz"),
    ],
)
def test_unknown_policy_values_and_fields_are_refused(body: dict, field: str):
    found = errors(crons=["0 10 * * *"], **body)

    assert [where for where, _ in found] == [field]


def test_every_bad_field_is_reported_at_once():
    found = errors(
        timeZone="Nowhere",
        crons=["0 10 * * *", "0 0 30 2 *"],
        misfirePolicy="maybe",
        startDate="someday",
    )

    assert sorted(where for where, _ in found) == [
        "crons.1",
        "misfirePolicy",
        "startDate",
        "timeZone",
    ]
