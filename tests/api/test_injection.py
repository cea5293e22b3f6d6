"""A caller who may only execute can never run code: parameters reach steps as data.

The attack this guards against, as it was found: an Operator key executed a copy of the demo's
`hello` job with `who` = `; <command>`, ran that command on the worker, read the token signing
key out of the database, and signed itself an Administrator token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import Server, admin_key


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("demo")
    server = Server(f"sqlite:///{workdir / 'jobport.db'}", workdir).start("--demo")
    yield server
    server.kill()


@pytest.fixture(scope="module")
def operator(demo: Server) -> Iterator[httpx2.Client]:
    """A key whose only right is the built-in Operator role in the demo project."""
    key = admin_key(demo.database_url, role="Operator", project="demo")
    with httpx2.Client(
        base_url=demo.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


def run_hello(operator: httpx2.Client, who: str) -> tuple[dict[str, Any], list[str]]:
    response = operator.post(
        "/api/v1/projects/demo/jobs/hello/execute",
        params={"wait": 30},
        json={"parameters": {"who": who}},
    )
    assert response.status_code == 200, response.text
    run = response.json()
    logs = operator.get(f"/api/v1/executions/{run['id']}/logs").json()["items"]
    return run, [line["text"] for line in logs if line["stream"] == "stdout"]


PAYLOADS = [
    "; touch {mark}",
    "$(touch {mark})",
    "`touch {mark}`",
    "&& touch {mark}",
    "| touch {mark}",
    "'; touch {mark}; echo '",
    '"; touch {mark}; echo "',
    "x\ntouch {mark}",
    "$(sqlite3 jobport.db 'select value from server_secrets' > {mark})",
    "$JOBPORT_DATABASE_URL ${{PATH}}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_execute_only_key_cannot_run_code_through_the_demo_hello_job(
    demo: Server, operator: httpx2.Client, payload: str
) -> None:
    # Relative: steps start in the server's directory. (An absolute path could push the
    # value past the 100 characters hello's schema allows.)
    mark = demo.workdir / "pwned"
    who = payload.format(mark="pwned")
    run, stdout = run_hello(operator, who)
    assert run["status"] == "succeeded", run
    assert stdout == f"hello {who}".split("\n"), "the value must be printed as it was sent"
    assert not mark.exists(), f"{payload!r} ran a command on the worker"


def test_the_operator_key_holds_no_right_to_write_jobs(operator: httpx2.Client) -> None:
    """So the only way to run code would be through parameters, which the test above closes."""
    job = {"name": "evil", "steps": [{"name": "a", "kind": "command", "config": {"command": "id"}}]}
    response = operator.post("/api/v1/projects/demo/jobs", json=job)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_the_demo_jobs_declare_their_parameters(operator: httpx2.Client, demo: Server) -> None:
    cases = [
        ("hello", {"who": "x" * 101}, "parameters.who"),
        ("hello", {"who": 5}, "parameters.who"),
        ("hello", {"colour": "red"}, "parameters"),
        ("top-customers", {"limit": 500}, "parameters.limit"),
        ("sleepy", {"seconds": "300; reboot"}, "parameters.seconds"),
        ("noop", {"anything": 1}, "parameters"),
    ]
    for job, parameters, field in cases:
        response = operator.post(
            f"/api/v1/projects/demo/jobs/{job}/execute", json={"parameters": parameters}
        )
        assert response.status_code == 422, (job, response.text)
        error = response.json()
        assert error["error"] == "invalid_parameters", error
        assert error["details"][0]["field"] == field, error
    runs = operator.get("/api/v1/projects/demo/executions").json()["items"]
    assert all(r["parameters"] != p for r in runs for _, p, _ in cases)


def test_a_command_step_gets_its_parameters_as_environment_variables(
    demo: Server, tmp_path: Path
) -> None:
    with demo.client() as admin:
        job = {
            "name": "env-params",
            "parameters": {"region": "eu; id", "limit": 10, "flags": {"a": [1]}},
            "steps": [
                {
                    "name": "show",
                    "kind": "command",
                    "config": {
                        "command": "printf '%s|%s|%s\\n' \"$JOBPORT_PARAM_REGION\" "
                        '"$JOBPORT_PARAM_LIMIT" "$JOBPORT_PARAM_FLAGS"'
                    },
                }
            ],
        }
        assert admin.post("/api/v1/projects/demo/jobs", json=job).status_code == 201
        run = admin.post(
            "/api/v1/projects/demo/jobs/env-params/execute",
            params={"wait": 30},
            json={"parameters": {"region": "$(id)"}},
        ).json()
        assert run["status"] == "succeeded", run
        logs = admin.get(f"/api/v1/executions/{run['id']}/logs").json()["items"]
        assert '$(id)|10|{"a": [1]}' in [line["text"] for line in logs]


def test_parameters_schema_is_checked_before_anything_is_stored(demo: Server) -> None:
    with demo.client() as admin:
        schema = {
            "type": "object",
            "properties": {"day": {"type": "string", "format": "date"}},
            "required": ["day"],
            "additionalProperties": False,
        }
        job = {
            "name": "typed",
            "parametersSchema": schema,
            "steps": [
                {"name": "a", "kind": "command", "config": {"command": "echo {{ params.day }}"}}
            ],
        }
        created = admin.post("/api/v1/projects/demo/jobs", json=job)
        assert created.status_code == 201, created.text
        assert created.json()["parametersSchema"] == schema
        for parameters in ({}, {"day": "tuesday"}, {"day": "2026-11-30", "extra": 1}):
            response = admin.post(
                "/api/v1/projects/demo/jobs/typed/execute", json={"parameters": parameters}
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"] == "invalid_parameters"
        assert (
            admin.get("/api/v1/projects/demo/executions", params={"job": "typed"}).json()["items"]
            == []
        )
        ok = admin.post(
            "/api/v1/projects/demo/jobs/typed/execute",
            params={"wait": 30},
            json={"parameters": {"day": "2026-11-30"}},
        )
        assert ok.status_code == 200 and ok.json()["status"] == "succeeded", ok.text

        bad = {**job, "name": "bad-schema", "parametersSchema": {"type": "banana"}}
        response = admin.post("/api/v1/projects/demo/jobs", json=bad)
        assert response.status_code == 422 and "parametersSchema" in response.text
        remote = {**job, "name": "remote", "parametersSchema": {"$ref": "http://169.254.169.254/"}}
        response = admin.post("/api/v1/projects/demo/jobs", json=remote)
        assert response.status_code == 422 and "only local" in response.text
