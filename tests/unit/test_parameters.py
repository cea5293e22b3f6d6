"""Job parameters: declared by defaults, or by a JSON Schema that decides alone."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from jobport.domain.jobs import JobSpec

STEP = {"name": "a", "kind": "command", "config": {"command": "echo hi"}}
SCHEMA = {
    "type": "object",
    "properties": {
        "who": {"type": "string", "maxLength": 5},
        "day": {"type": "string", "format": "date"},
        "n": {"type": "integer", "minimum": 1},
    },
    "required": ["n"],
    "additionalProperties": False,
}


def spec(**fields: Any) -> JobSpec:
    return JobSpec.model_validate({"name": "j", "steps": [STEP], **fields})


def test_without_a_schema_only_the_declared_names_may_be_passed() -> None:
    job = spec(parameters={"who": "world"})
    assert job.parameter_problems({"who": 7}) == []  # no types without a schema
    assert job.parameter_problems({"nope": 1}) == [
        {"field": "parameters.nope", "reason": "not declared by the job"}
    ]


def test_a_schema_checks_types_formats_required_and_undeclared_names() -> None:
    job = spec(parameters={"who": "ann"}, parametersSchema=SCHEMA)
    assert job.parameter_problems({"n": 2, "day": "2026-11-30"}) == []
    problems = job.parameter_problems({"who": "too long", "day": "someday", "extra": 1})
    fields = {p["field"]: p["reason"] for p in problems}
    assert set(fields) == {"parameters", "parameters.who", "parameters.day"}
    assert "'n' is a required property" in [p["reason"] for p in problems]
    assert "'extra' was unexpected" in " ".join(p["reason"] for p in problems)
    assert "too long" in fields["parameters.who"]
    assert "date" in fields["parameters.day"]


def test_the_schema_sees_the_defaults_merged_with_the_callers_values() -> None:
    job = spec(parameters={"n": 1}, parametersSchema=SCHEMA)
    assert job.parameter_problems({}) == []
    assert job.parameter_problems({"n": 0})[0]["field"] == "parameters.n"


@pytest.mark.parametrize(
    ("schema", "defaults", "reason"),
    [
        ({"type": "banana"}, {}, "not a valid JSON Schema"),
        ({"properties": {"x": {"$ref": "https://example.com/s.json"}}}, {}, "only local"),
        ({"$ref": "file:///etc/passwd"}, {}, "only local"),
        ({"properties": {"n": {"type": "integer"}}}, {"n": "three"}, "default of parameters.n"),
    ],
)
def test_a_bad_schema_or_a_default_that_breaks_it_is_refused_with_the_job(
    schema: dict[str, Any], defaults: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        spec(parameters=defaults, parametersSchema=schema)


def test_a_local_reference_works() -> None:
    schema = {
        "$defs": {"small": {"type": "integer", "maximum": 3}},
        "properties": {"n": {"$ref": "#/$defs/small"}},
    }
    job = spec(parameters={"n": 1}, parametersSchema=schema)
    assert job.parameter_problems({"n": 4})[0]["field"] == "parameters.n"
