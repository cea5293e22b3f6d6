"""`jobport connections ...` and `jobport run --mode`, run as a real subprocess against a real
server: secrets go in (from stdin too) and never come out; usage errors exit 2 before a call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import httpx2
import pytest

from conftest import Server, free_port

PASSWORD, TOKEN = "s3cret-pw", "t0ken-value"


class Run(Protocol):
    def __call__(
        self, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def _runner(url: str, key: str | None, cwd: Path) -> Run:
    env = {**os.environ, "JOBPORT_URL": url, "COLUMNS": "200"}
    if key is not None:
        env["JOBPORT_KEY"] = key

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobport.cli", *args],
            env=env,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def jobport(server: Server, tmp_path: Path) -> Run:
    """`jobport ARGS...` against the test server, as an Administrator key."""
    return _runner(server.url, server.key, tmp_path)


@pytest.fixture
def offline(tmp_path: Path) -> Run:
    """`jobport ARGS...` with no server at all: what must fail before any call."""
    return _runner(f"http://127.0.0.1:{free_port()}", None, tmp_path)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["create", "p/dw"], None, "give the connection's --url, or --url-stdin"),
        (["create", "p/dw", "--url", "sqlite://", "--url-stdin"], "x", "not both"),
        (["create", "p/dw", "--url-stdin"], "\n", "no URL on standard input"),
        (["create", "dw", "--url", "sqlite://"], None, "is not PROJECT/NAME"),
        (["create", "p/dw", "--url", "http://x", "--header", "X-Token"], None, "'Name: value'"),
        (["update", "p/dw"], None, "nothing to change"),
        (["update", "p/dw", "--header", "A: b", "--clear-headers"], None, "not both"),
        (["show", "p/"], None, "is not PROJECT/NAME"),
    ],
)
def test_usage_errors_exit_2_before_any_call(
    offline: Run, args: list[str], stdin: str | None, says: str
) -> None:
    done = offline("connections", *args, input=stdin)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in " ".join(done.stderr.split())  # rich wraps usage errors in a box
    assert "could not reach" not in done.stderr


def test_run_mode_delta_is_recorded_and_seen_by_the_step(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    step = {
        "name": "say",
        "kind": "command",
        "config": {"command": "echo $JOBPORT_MODE {{ mode }}"},
    }
    made = api.post(f"/api/v1/projects/{project}/jobs", json={"name": "moded", "steps": [step]})
    assert made.status_code == 201, made.text

    done = jobport("run", f"{project}/moded", "--mode", "delta", "--follow", "--json")
    run = _json(done)
    assert run["status"] == "succeeded" and run["mode"] == "delta"
    assert "delta delta" in done.stderr.splitlines()  # --json: the log lines on stderr
    assert api.get(f"/api/v1/executions/{run['id']}").json()["mode"] == "delta"
    default = _json(jobport("run", f"{project}/moded", "--wait", "--json"))
    assert default["mode"] == "full"
    wrong = jobport("run", f"{project}/moded", "--mode", "partial")
    assert wrong.returncode == 2 and "partial" in wrong.stderr


def test_the_connections_group_is_listed_and_says_how_to_keep_a_password_off_the_command_line(
    offline: Run,
) -> None:
    assert "connections" in offline("--help").stdout
    helped = " ".join(offline("connections", "create", "--help").stdout.split())
    assert "--url-stdin" in helped and "shell history" in helped
