"""The execution state machine, result shaping and retry delays."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from jobport.domain.executions import (
    ACTIVE,
    FINAL_STATUSES,
    Status,
    can_transition,
    drop_schema,
    infer_schema,
    retry_delay,
    sources_of,
    to_result,
)

S = Status
ALLOWED = {
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLING),
    (S.RUNNING, S.TIMED_OUT),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.QUEUED),  # a foreach run whose worker died resumes
    (S.CANCELLING, S.CANCELLED),
    (S.CANCELLING, S.FAILED),
    (S.CANCELLING, S.TIMED_OUT),
}


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_every_documented_transition_is_allowed(current: Status, target: Status) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    sorted(set(itertools.product(Status, Status)) - ALLOWED),
)
def test_every_other_transition_is_forbidden(current: Status, target: Status) -> None:
    assert not can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.SUCCEEDED, S.RUNNING),
        (S.FAILED, S.QUEUED),
        (S.CANCELLED, S.RUNNING),
        (S.QUEUED, S.SUCCEEDED),
        (S.CANCELLING, S.SUCCEEDED),
        (S.RUNNING, S.RUNNING),
    ],
)
def test_notable_forbidden_transitions(current: Status, target: Status) -> None:
    assert not can_transition(current, target)


def test_sources_of_is_the_where_clause_of_each_compare_and_set() -> None:
    assert sources_of(S.RUNNING) == {S.QUEUED}
    assert sources_of(S.CANCELLING) == {S.RUNNING}
    assert sources_of(S.CANCELLED) == {S.QUEUED, S.RUNNING, S.CANCELLING}
    assert sources_of(S.SUCCEEDED) == {S.RUNNING}
    assert sources_of(S.FAILED) == sources_of(S.TIMED_OUT) == {S.RUNNING, S.CANCELLING}
    assert sources_of(S.QUEUED) == {S.RUNNING}


def test_final_and_active_statuses_split_all_statuses() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT} == FINAL_STATUSES
    assert {S.QUEUED, S.RUNNING, S.CANCELLING} == ACTIVE
    assert set(Status) == FINAL_STATUSES | ACTIVE and not FINAL_STATUSES & ACTIVE
    assert all(s.is_final for s in FINAL_STATUSES) and not any(s.is_final for s in ACTIVE)


def test_statuses_are_their_wire_strings() -> None:
    assert S("timed_out") is S.TIMED_OUT and S.CANCELLING == "cancelling"


def test_infer_schema_types_columns_in_first_seen_order() -> None:
    records = [
        {"id": 1, "name": "a", "score": 1, "ok": True, "when": None},
        {"id": 2, "name": None, "score": 2.5, "ok": False, "tags": ["x"], "extra": {"k": 1}},
        {"id": 3, "day": dt.date(2026, 1, 1), "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    ]
    assert infer_schema(records) == [
        {"name": "id", "type": "integer"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "number"},
        {"name": "ok", "type": "boolean"},
        {"name": "when", "type": "string"},  # only nulls: string
        {"name": "tags", "type": "array"},
        {"name": "extra", "type": "object"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2.0], "number"),
        ([2.0, 1], "number"),
        ([1, "a"], "string"),
        ([True, 1], "string"),  # a boolean is not an integer here
        ([None, 3, None], "integer"),
        ([{"a": 1}, [1]], "string"),
        ([object()], "string"),
    ],
)
def test_infer_schema_merges_mixed_column_types(values: list[object], expected: str) -> None:
    assert infer_schema([{"c": v} for v in values]) == [{"name": "c", "type": expected}]


def test_to_result_turns_a_list_of_objects_into_records_with_a_schema() -> None:
    rows = [{"id": 1}, {"id": 2}]
    assert to_result(rows) == {"schema": [{"name": "id", "type": "integer"}], "records": rows}


@pytest.mark.parametrize(
    "value",
    [
        [],
        [1, 2],
        [{"a": 1}, 2],
        {"schema": [{"name": "a", "type": "string"}], "records": [{"a": "x"}]},
        {"answer": 42},
        "text",
        3.5,
        None,
    ],
)
def test_to_result_keeps_anything_else_unchanged(value: object) -> None:
    assert to_result(value) == value


def test_drop_schema_removes_only_the_schema_of_a_records_result() -> None:
    result = {"schema": [], "records": [{"a": 1}], "total": 1}
    assert drop_schema(result) == {"records": [{"a": 1}], "total": 1}
    assert result["schema"] == []  # the input is not modified
    assert drop_schema({"schema": "mine"}) == {"schema": "mine"}
    assert drop_schema([1]) == [1] and drop_schema(None) is None


@pytest.mark.parametrize(
    ("attempt", "base", "backoff", "expected"),
    [
        (1, 10, 2, 10),
        (2, 10, 2, 20),
        (3, 10, 2, 40),
        (4, 1.5, 3, 40.5),
        (5, 7, 1, 7),
        (0, 10, 2, 10),
        (3, 0, 2, 0),
    ],
)
def test_retry_delay_grows_by_the_backoff_after_the_first_attempt(
    attempt: int, base: float, backoff: float, expected: float
) -> None:
    assert retry_delay(attempt, base, backoff) == pytest.approx(expected)
