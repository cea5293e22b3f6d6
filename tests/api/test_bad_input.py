"""Bad input gets a 4xx that says what is wrong, and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from jobport.errors import Invalid
from jobport.services import jobs as job_service


def step(name: str = "a", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": "echo hi"}, **extra}


BAD_JOBS = [
    ("unknown top-level field", {"name": "j", "steps": [step()], "colour": "red"}, "colour"),
    ("unknown step field", {"name": "j", "steps": [step(colour="red")]}, "colour"),
    ("needs a missing step", {"name": "j", "steps": [step(needs=["ghost"])]}, "ghost"),
    (
        "a cycle",
        {"name": "j", "steps": [step("a", needs=["b"]), step("b", needs=["a"])]},
        "cycle",
    ),
    ("duplicate step names", {"name": "j", "steps": [step(), step()]}, "twice"),
    (
        "template that does not parse",
        {
            "name": "j",
            "steps": [{"name": "a", "kind": "command", "config": {"command": "echo {{ params.x "}}],
        },
        "template",
    ),
    ("unknown step kind", {"name": "j", "steps": [{"name": "a", "kind": "teleport"}]}, "teleport"),
    (
        "python step without module:function",
        {"name": "j", "steps": [{"name": "a", "kind": "python", "config": {"callable": "x"}}]},
        "module:function",
    ),
    ("no steps", {"name": "j", "steps": []}, "steps"),
    ("bad name", {"name": "../etc", "steps": [step()]}, "name"),
    ("wrong type", {"name": "j", "steps": [step()], "timeoutSeconds": "soon"}, "timeoutSeconds"),
    (
        "bad concurrency policy",
        {"name": "j", "steps": [step()], "concurrencyPolicy": "maybe"},
        "concurrencyPolicy",
    ),
]


@pytest.mark.parametrize(("case", "body", "mentions"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
def test_bad_job_definitions_are_refused_and_not_stored(
    api: httpx2.Client, project: str, case: str, body: dict[str, Any], mentions: str
) -> None:
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert set(error) == {"error", "message", "details"}
    assert error["error"] == "invalid_job"
    assert mentions in response.text
    assert api.get(f"/api/v1/projects/{project}/jobs").json()["items"] == []


TYPOS = [
    ("a misspelt field", {"name": "j", "steps": [step()], "timeoutSecond": 5}),
    ("a misspelt step field", {"name": "j", "steps": [step(need=["a"])]}),
    ("a flag where a count goes", {"name": "j", "steps": [step()], "retries": True}),
    ("two at once", {"name": "j", "stepz": [], "steps": [step(colour="red")]}),
]


@pytest.mark.parametrize(("case", "body"), TYPOS, ids=[c[0] for c in TYPOS])
def test_a_typo_in_a_job_is_the_services_invalid_job_over_http(
    api: httpx2.Client, project: str, case: str, body: dict[str, Any]
) -> None:
    # One code and one details shape for one mistake, whichever way the job comes in.
    with pytest.raises(Invalid) as refused:
        job_service.parse_spec(body)
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "invalid_job",
        "message": refused.value.message,
        "details": refused.value.details,
    }


def test_malformed_json_is_a_400(api: httpx2.Client, project: str) -> None:
    response = api.post(
        f"/api/v1/projects/{project}/jobs",
        content=b'{"name": "j", "steps": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_a_body_over_the_limit_is_a_413(api: httpx2.Client, project: str) -> None:
    huge = {"name": "j", "description": "x" * 2_000_000, "steps": [step()]}
    response = api.post(f"/api/v1/projects/{project}/jobs", json=huge)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert api.get(f"/api/v1/projects/{project}/jobs").json()["items"] == []


def test_execute_rejects_bad_input_without_starting_a_run(api: httpx2.Client, project: str) -> None:
    api.post(
        f"/api/v1/projects/{project}/jobs",
        json={"name": "j", "parameters": {"n": 1}, "steps": [step()]},
    )
    cases = [
        ({"mode": "sideways"}, "invalid_mode"),
        ({"parameters": {"nope": 1}}, "unknown_parameter"),
        ({"executionId": "has spaces and /"}, "invalid_execution_id"),
        ({"surprise": True}, "invalid_request"),
    ]
    for body, code in cases:
        response = api.post(f"/api/v1/projects/{project}/jobs/j/execute", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == code
    runs = api.get(f"/api/v1/projects/{project}/executions").json()["items"]
    assert runs == []


def test_unknown_things_are_404_with_a_code(api: httpx2.Client, project: str) -> None:
    cases = {
        "/api/v1/projects/nope/jobs": "project_not_found",
        f"/api/v1/projects/{project}/jobs/nope": "job_not_found",
        "/api/v1/executions/nope": "execution_not_found",
        "/api/v1/nothing-here": "not_found",
    }
    for path, code in cases.items():
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == code


def test_a_bad_cursor_is_refused(api: httpx2.Client, project: str) -> None:
    response = api.get(f"/api/v1/projects/{project}/jobs", params={"cursor": "garbage!"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_cursor"


def test_a_typo_in_a_job_patch_is_invalid_job_too(api: httpx2.Client, project: str) -> None:
    created = api.post(f"/api/v1/projects/{project}/jobs", json={"name": "j", "steps": [step()]})
    assert created.status_code == 201, created.text
    with pytest.raises(Invalid) as refused:
        job_service.parse_spec({"name": "j", "steps": [step()], "timeoutSecond": 5})
    response = api.patch(f"/api/v1/projects/{project}/jobs/j", json={"timeoutSecond": 5})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "invalid_job",
        "message": refused.value.message,
        "details": [{"field": "timeoutSecond", "reason": "Extra inputs are not permitted"}],
    }
    assert refused.value.details == response.json()["details"]
