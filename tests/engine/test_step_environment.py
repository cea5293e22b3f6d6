"""Steps get a clean environment: never the server's settings or whatever else it was given."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx2
import pytest

from api.test_execute import execute, final, make_job, py
from conftest import Server

SERVER_ONLY = {
    "SERVER_ONLY_SECRET": "do-not-pass-me",
    "PASS_ME": "passed",
    "GLOBBED_REGION": "eu-west-3",
    "GLOBBED_KEY": "also-passed",
}
TOKEN_SECRET = "token-secret-the-steps-must-not-see"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("env")
    # JOBPORT_* in the passthrough must not let the server's settings through either.
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        step_env_passthrough="PASS_ME, GLOBBED_* JOBPORT_*",
        token_secret=TOKEN_SECRET,
    )
    srv.env.update(SERVER_ONLY)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx2.Client]:
    with server.client() as client:
        client.post("/api/v1/projects", json={"name": "env"})
        yield client


def logged_environment(api: httpx2.Client, execution_id: str) -> dict[str, str]:
    lines = api.get(f"/api/v1/executions/{execution_id}/logs").json()["items"]
    pairs = [ln["text"].split("=", 1) for ln in lines if ln["stream"] == "stdout"]
    return dict(pairs)  # type: ignore[arg-type]


def test_a_command_step_gets_only_the_base_variables_its_context_its_env_and_the_passthrough(
    server: Server, api: httpx2.Client
) -> None:
    step = {"name": "show", "kind": "command", "config": {"command": ["env"]}}
    step["config"]["env"] = {"STEP_VAR": "from the step", "PATH": "/usr/bin:/bin"}
    job = make_job(api, "env", steps=[step])
    run = execute(api, "env", job["name"], wait=20).json()
    assert final(api, run["id"])["status"] == "succeeded"

    env = logged_environment(api, run["id"])
    assert env.pop("JOBPORT_EXECUTION_ID") == run["id"]
    assert env.pop("JOBPORT_STEP") == "show"
    assert env.pop("JOBPORT_JOB") == job["name"]
    assert env.pop("JOBPORT_MODE") == "full"
    assert env.pop("JOBPORT_ATTEMPT") == "1"
    assert env.pop("STEP_VAR") == "from the step"
    assert env.pop("PATH") == "/usr/bin:/bin"  # the step's own env wins over the base
    assert env.pop("HOME") == os.environ.get("HOME", "/root")
    assert env.pop("PASS_ME") == "passed"
    assert env.pop("GLOBBED_REGION") == "eu-west-3"
    assert env.pop("GLOBBED_KEY") == "also-passed"
    # What may be left: the other base variables, when the server has them, and the job's
    # parameters (none here).
    assert set(env) <= {"LANG", "LC_ALL", "TZ", "TMPDIR"}, env
    for name in env:
        assert env[name] == os.environ[name]


def test_a_command_step_cannot_pass_itself_off_as_another_run(api: httpx2.Client) -> None:
    step = {"name": "fake", "kind": "command", "config": {"command": "true"}}
    step["config"]["env"] = {"JOBPORT_EXECUTION_ID": "someone-else"}
    response = api.post("/api/v1/projects/env/jobs", json={"name": "fake", "steps": [step]})
    assert response.status_code == 422
    assert "JOBPORT_EXECUTION_ID" in response.text


def test_a_python_step_finds_no_server_setting_in_os_environ(
    server: Server, api: httpx2.Client
) -> None:
    job = make_job(api, "env", steps=[py("peek", "os:environ.copy")])
    run = execute(api, "env", job["name"], wait=20).json()
    done = final(api, run["id"])
    assert done["status"] == "succeeded"
    environ = done["result"]
    assert not [name for name in environ if name.startswith("JOBPORT_")]
    assert TOKEN_SECRET not in str(environ) and server.database_url not in str(environ)
    # The rest of the worker's environment stays: Python steps are the worker's own code.
    assert environ["PYTHONPATH"] == server.env["PYTHONPATH"]
