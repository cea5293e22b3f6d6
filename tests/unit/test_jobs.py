"""Job definitions: validation of steps and their graph, aliases, the result step."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from jobport.domain.jobs import JobSpec, Step, is_valid_name, result_step, topological_order


def step(name: str, *needs: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "command",
        "config": {"command": "true"},
        "needs": list(needs),
        **fields,
    }


def spec(*steps: dict[str, Any], **fields: Any) -> JobSpec:
    return JobSpec.model_validate({"name": "job", "steps": list(steps), **fields})


def errors_of(*steps: dict[str, Any], **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        spec(*steps, **fields)
    return str(caught.value)


def test_a_minimal_job_gets_the_documented_defaults() -> None:
    job = spec(step("only"))
    assert (job.concurrency_policy, job.max_concurrent, job.queue) == ("allow", None, "default")
    assert (job.retries, job.retry_delay_seconds, job.retry_backoff) == (0, 10.0, 2.0)
    only = job.steps[0]
    assert (only.retries, only.continue_on_error, only.result, only.timeout_seconds) == (
        0,
        False,
        False,
        None,
    )


def test_step_names_must_be_unique() -> None:
    assert "step name 'extract' is used twice" in errors_of(step("extract"), step("extract"))


def test_a_step_cannot_need_a_missing_step() -> None:
    message = errors_of(step("load", "extract"))
    assert "step 'load' needs 'extract', which is not a step" in message


def test_a_step_cannot_need_itself() -> None:
    assert "step 'load' needs itself" in errors_of(step("load", "load"))


def test_a_cycle_is_reported_with_the_names_in_it() -> None:
    message = errors_of(step("a", "c"), step("b", "a"), step("c", "b"), step("free"))
    assert "steps ['a', 'b', 'c'] form a cycle" in message
    assert "free" not in message


def test_at_most_one_step_is_the_result() -> None:
    message = errors_of(step("a", result=True), step("b", result=True))
    assert "only one step may be marked result: true, got ['a', 'b']" in message
    assert result_step(spec(step("a", result=True), step("b"))) == "a"


def test_without_a_marked_step_the_last_step_is_the_result() -> None:
    assert result_step(spec(step("a"), step("b"), step("c", "a"))) == "c"


@pytest.mark.parametrize(
    "fields",
    [
        {"bogus": 1},
        {"maxConcurrency": 2},  # a near miss of maxConcurrent is not silently ignored
    ],
)
def test_unknown_job_fields_are_rejected(fields: dict[str, Any]) -> None:
    assert "Extra inputs are not permitted" in errors_of(step("a"), **fields)


def test_unknown_step_fields_are_rejected() -> None:
    assert "Extra inputs are not permitted" in errors_of(step("a", dependsOn=["b"]))


def test_a_job_needs_at_least_one_step() -> None:
    assert "at least 1 item" in errors_of()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"retries": -1}, "retries"),
        ({"maxConcurrent": 0}, "maxConcurrent"),
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"retryBackoff": 0.5}, "retryBackoff"),
        ({"concurrencyPolicy": "queue"}, "concurrencyPolicy"),
        ({"name": "-starts-with-dash"}, "name"),
        ({"name": "has/slash"}, "name"),
        ({"queue": "two words"}, "queue"),
        ({"queue": ""}, "queue"),
        ({"queue": "q" * 101}, "queue"),
    ],
)
def test_out_of_range_job_fields_are_rejected(fields: dict[str, Any], problem: str) -> None:
    assert problem in errors_of(step("a"), **fields)


def test_camel_case_aliases_and_snake_case_names_both_work() -> None:
    camel = spec(
        step("a", timeoutSeconds=5, continueOnError=True, retryDelaySeconds=2),
        timeoutSeconds=60,
        maxConcurrent=3,
        concurrencyPolicy="forbid",
        retryDelaySeconds=1,
        retryBackoff=1.5,
    )
    snake = spec(
        step("a", timeout_seconds=5, continue_on_error=True, retry_delay_seconds=2),
        timeout_seconds=60,
        max_concurrent=3,
        concurrency_policy="forbid",
        retry_delay_seconds=1,
        retry_backoff=1.5,
    )
    assert camel == snake
    assert (camel.max_concurrent, camel.concurrency_policy, camel.timeout_seconds) == (
        3,
        "forbid",
        60,
    )
    assert camel.steps[0].continue_on_error and camel.steps[0].timeout_seconds == 5


def test_wire_form_is_camel_case_and_round_trips() -> None:
    job = spec(step("a", continueOnError=True), maxConcurrent=2, labels={"team": "data"})
    wire = job.wire()
    assert wire["maxConcurrent"] == 2 and wire["concurrencyPolicy"] == "allow"
    assert wire["steps"][0]["continueOnError"] is True
    assert "max_concurrent" not in wire
    assert JobSpec.model_validate(wire) == job


def test_a_job_spec_is_immutable() -> None:
    job = spec(step("a"))
    with pytest.raises(ValidationError):
        job.name = "other"  # type: ignore[misc]


def test_topological_order_puts_needs_first_and_keeps_the_written_order() -> None:
    steps = [
        Step.model_validate(s) for s in (step("c", "a"), step("a"), step("b"), step("d", "c", "b"))
    ]
    assert topological_order(steps) == ["a", "b", "c", "d"]
    independent = [Step.model_validate(step(n)) for n in ("z", "y", "x")]
    assert topological_order(independent) == ["z", "y", "x"]


def test_topological_order_leaves_out_a_cycle() -> None:
    steps = [Step.model_validate(s) for s in (step("a", "b"), step("b", "a"), step("c"))]
    assert topological_order(steps) == ["c"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("nightly", True),
        ("Load 2024.v2_final-x", True),
        ("a" * 200, True),
        ("a" * 201, False),
        ("", False),
        (" leading space", False),
        ("_private", False),
        ("semi;colon", False),
        ("ünïcode", False),
    ],
)
def test_names_are_letters_digits_and_a_few_separators(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid
