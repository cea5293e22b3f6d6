"""The `jobport` command over HTTP, run as a real subprocess against a real server."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
import yaml

from conftest import Server, free_port, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]


def environment(url: str, key: str | None) -> dict[str, str]:
    """The CLI's environment: the server's URL and, as `JOBPORT_KEY`, an API key."""
    env = {**os.environ, "JOBPORT_URL": url, "COLUMNS": "200"}
    if key is not None:
        env["JOBPORT_KEY"] = key
    return env


@pytest.fixture
def jobport(server: Server, tmp_path: Path) -> Run:
    """Run `jobport ARGS...` against the test server as an Administrator key."""

    def run(*args: str, url: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobport.cli", *args],
            env={**environment(url or server.url, server.key), **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def sh(name: str, command: str) -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": command}}


def make_job(api: httpx2.Client, project: str, name: str, **fields: Any) -> dict[str, Any]:
    response = api.post(f"/api/v1/projects/{project}/jobs", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def execute(api: httpx2.Client, project: str, job: str) -> dict[str, Any]:
    """A finished run, started over the API."""
    response = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute", params={"wait": 30})
    assert response.status_code == 200, response.text
    return response.json()


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data))
    return path


def test_apply_twice_creates_then_changes_nothing(
    jobport: Run, api: httpx2.Client, tmp_path: Path
) -> None:
    project = f"apply-{uuid.uuid4().hex[:8]}"
    jobs = [
        {
            "name": "extract",
            "parameters": {"day": "mon"},
            "steps": [sh("go", "echo {{ params.day }}")],
        },
        {"name": "load", "labels": {"team": "data"}, "steps": [sh("go", "true")]},
    ]
    file = write(tmp_path / "jobs.yaml", {"project": project, "description": "d", "jobs": jobs})

    first = jobport("jobs", "apply", "-f", str(file))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"created   {project}/extract",
        f"created   {project}/load",
    ]
    stamps = {
        j["name"]: j["updatedAt"]
        for j in api.get(f"/api/v1/projects/{project}/jobs").json()["items"]
    }

    second = jobport("jobs", "apply", "-f", str(file))
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f"unchanged {project}/extract",
        f"unchanged {project}/load",
    ]
    after = {
        j["name"]: j["updatedAt"]
        for j in api.get(f"/api/v1/projects/{project}/jobs").json()["items"]
    }
    assert after == stamps

    jobs[0]["description"] = "now described"
    write(file, {"project": project, "jobs": jobs})
    third = jobport("jobs", "apply", "-f", str(file))
    assert third.stdout.splitlines() == [
        f"updated   {project}/extract",
        f"unchanged {project}/load",
    ]
    assert (
        api.get(f"/api/v1/projects/{project}/jobs/extract").json()["description"] == "now described"
    )

    listed = jobport("jobs", "list", project)
    assert (
        listed.returncode == 0 and "extract" in listed.stdout and "now described" in listed.stdout
    )
    shown = jobport("jobs", "show", f"{project}/load")
    assert shown.returncode == 0
    assert yaml.safe_load(shown.stdout)["labels"] == {"team": "data"}  # YAML ready to apply


def test_apply_an_invalid_definition_exits_1_naming_the_problem_and_applies_nothing_of_it(
    jobport: Run, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    make_job(api, project, "kept", steps=[sh("go", "echo old")])
    before = api.get(f"/api/v1/projects/{project}/jobs/kept").json()
    file = write(
        tmp_path / "jobs.json",
        [
            {"name": "fine", "steps": [sh("go", "true")]},
            {"name": "weird", "steps": [{"name": "go", "kind": "teleport"}]},
            {"name": "kept", "steps": [{"name": "go", "kind": "command", "config": {"shell": 1}}]},
        ],
    )

    result = jobport("jobs", "apply", "-f", str(file), "--project", project)

    assert result.returncode == 1
    assert f"created   {project}/fine" in result.stdout
    assert f"{project}/weird: error: invalid_job:" in result.stderr
    assert "unknown step kind 'teleport'" in result.stderr
    assert "unknown command config keys ['shell']" in result.stderr
    assert api.get(f"/api/v1/projects/{project}/jobs/weird").status_code == 404
    assert api.get(f"/api/v1/projects/{project}/jobs/kept").json() == before


def test_apply_needs_a_project_and_a_parsable_file(jobport: Run, tmp_path: Path) -> None:
    file = write(tmp_path / "one.yaml", {"name": "solo", "steps": [sh("go", "true")]})
    no_project = jobport("jobs", "apply", "-f", str(file))
    assert no_project.returncode == 2 and "names no project" in no_project.stderr
    (tmp_path / "bad.yaml").write_text("jobs: [unclosed")
    unparsable = jobport("jobs", "apply", "-f", str(tmp_path / "bad.yaml"), "--project", "x")
    assert unparsable.returncode == 1 and "not valid YAML" in unparsable.stderr


def test_run_wait_exits_0_when_the_job_succeeds_and_1_when_it_fails(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(api, project, "good", steps=[sh("go", "echo fine")])
    make_job(api, project, "bad", steps=[sh("go", "exit 3")])

    good = jobport("run", f"{project}/good", "--wait")
    bad = jobport("run", f"{project}/bad", "--wait")

    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("succeeded: good ")
    assert bad.returncode == 1
    assert bad.stdout.startswith("failed: bad ")
    assert "error: step_failed:" in bad.stderr and "exited with code 3" in bad.stderr


def test_run_follow_prints_the_commands_output_as_it_comes_then_the_status(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(api, project, "talk", steps=[sh("go", "echo first; echo oops >&2; echo second")])

    result = jobport("run", f"{project}/talk", "--follow")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["first", "second"]
    assert lines[-1].startswith("succeeded: talk ")
    assert "oops" in result.stderr.splitlines()
    assert "· step 'go' (command) started" in result.stderr


def test_run_params_are_json_when_they_parse_and_strings_otherwise(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    declared = {"n": 0, "name": "", "flag": False, "tags": [], "code": ""}
    make_job(api, project, "typed", parameters=declared, steps=[sh("go", "true")])

    result = jobport(
        "run", f"{project}/typed", "--wait", "--json",
        "--params-json", '{"n": 1, "name": "from-json"}',
        "--param", "n=3", "--param", "flag=true", "--param", 'tags=["a", 2]',
        "--param", "code=007", "--param", "name=bob smith",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    execution = json.loads(result.stdout)
    assert execution["status"] == "succeeded"
    assert execution["parameters"] == {
        "n": 3, "name": "bob smith", "flag": True, "tags": ["a", 2], "code": "007"
    }  # fmt: skip


def test_run_without_wait_prints_the_id_and_replays_an_idempotency_key(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(api, project, "quick", steps=[sh("go", "true")])

    first = jobport("run", f"{project}/quick", "--idempotency-key", "nightly-1")
    again = jobport("run", f"{project}/quick", "--idempotency-key", "nightly-1")

    assert first.returncode == 0 and again.returncode == 0
    execution_id = first.stdout.strip()
    assert again.stdout.strip() == execution_id
    assert api.get(f"/api/v1/executions/{execution_id}").json()["jobName"] == "quick"


def test_executions_list_show_and_logs(jobport: Run, api: httpx2.Client, project: str) -> None:
    make_job(api, project, "hello", steps=[sh("greet", "echo hello there; echo bye")])
    make_job(api, project, "other", steps=[sh("go", "exit 1")])
    run = execute(api, project, "hello")
    failed = execute(api, project, "other")

    listed = jobport("executions", "list", project)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if run["id"] in line)
    assert "hello" in row and "succeeded" in row
    filtered = jobport("executions", "list", project, "--status", "failed", "--json")
    assert [e["id"] for e in json.loads(filtered.stdout)["items"]] == [failed["id"]]

    shown = jobport("executions", "show", failed["id"])
    assert shown.returncode == 0, shown.stderr
    assert "step_failed: step 'go': command exited with code 1" in shown.stdout

    logs = jobport("executions", "logs", run["id"])
    assert logs.returncode == 0
    assert logs.stdout.splitlines() == ["hello there", "bye"]
    items = api.get(f"/api/v1/executions/{run['id']}/logs").json()["items"]
    hello_seq = next(x["seq"] for x in items if x["text"] == "hello there")
    later = jobport("executions", "logs", run["id"], "--after", str(hello_seq), "--follow")
    assert later.returncode == 0 and later.stdout.splitlines() == ["bye"]


def test_cancel_ends_a_running_command_and_the_waiting_run_exits_1(
    jobport: Run, server: Server, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    make_job(api, project, "nap", steps=[sh("sleep", "echo going to sleep; sleep 30")])
    impatient = jobport("run", f"{project}/nap", "--wait", "--timeout", "0.5", "--json")
    assert impatient.returncode == 1 and "keeps running" in impatient.stderr
    first = json.loads(impatient.stdout)
    assert first["status"] in {"queued", "running"}
    assert api.post(f"/api/v1/executions/{first['id']}/cancel").status_code in {200, 202}

    follower = subprocess.Popen(
        [sys.executable, "-m", "jobport.cli", "run", f"{project}/nap", "--follow"],
        env=environment(server.url, server.key), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def second_run_started() -> list[dict[str, Any]]:
            page = api.get(f"/api/v1/projects/{project}/executions", params={"status": "running"})
            return [e for e in page.json()["items"] if e["id"] != first["id"]]

        execution_id = wait_for(second_run_started)[0]["id"]
        cancelled = jobport("executions", "cancel", execution_id, "--wait")
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.startswith(f"cancelled: nap {execution_id}")
        out, _ = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 1
    assert out.splitlines()[0] == "going to sleep"
    assert out.splitlines()[-1].startswith(f"cancelled: nap {execution_id}")
    assert api.get(f"/api/v1/executions/{execution_id}").json()["status"] == "cancelled"


def test_api_errors_exit_2_with_the_code_and_the_message(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(api, project, "plain", steps=[sh("go", "true")])
    missing = jobport("run", f"{project}/missing", "--wait")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: job_not_found: no job 'missing' in this project"
    unknown = jobport("run", f"{project}/plain", "--param", "zz=1")
    assert unknown.returncode == 2 and "error: unknown_parameter:" in unknown.stderr
    late = jobport("executions", "cancel", execute(api, project, "plain")["id"])
    assert late.returncode == 2 and "error: already_finished:" in late.stderr
    usage = jobport("run", "no-slash-here")
    assert usage.returncode == 2 and "PROJECT/JOB" in usage.stderr


def test_an_unreachable_server_exits_2_naming_the_url(
    jobport: Run, server: Server, project: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = jobport("jobs", "list", project, url=dead)
    assert result.returncode == 2
    assert f"could not reach the jobport server at {dead}" in result.stderr
    assert "Traceback" not in result.stderr

    # --url beats JOBPORT_URL, before or after the command
    assert jobport("--url", server.url, "jobs", "list", project, url=dead).returncode == 0
    assert jobport("jobs", "list", project, "--url", server.url, url=dead).returncode == 0


def test_schedules_set_prints_the_next_fire_in_the_schedules_own_zone(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(api, project, "nightly", steps=[sh("go", "true")])

    # A zone that is neither the machine's (New York here) nor UTC, named the Windows way.
    result = jobport(
        "schedules", "set", f"{project}/nightly", "night", "--cron", "30 2 * * *",
        "--tz", "Tokyo Standard Time", TZ="America/New_York",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    stored = api.get(f"/api/v1/projects/{project}/jobs/nightly/schedules/night").json()
    fire = dt.datetime.fromisoformat(stored["nextFireAt"].replace("Z", "+00:00"))
    in_tokyo = fire.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")
    assert in_tokyo.endswith(" 02:30:00")
    assert result.stdout.strip() == f"night: active, next fire {in_tokyo} (Asia/Tokyo)"


def test_schedules_list_names_the_zone_of_next_and_last(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(api, project, "nightly", steps=[sh("go", "true")])
    put = api.put(
        f"/api/v1/projects/{project}/jobs/nightly/schedules/night",
        json={"crons": ["30 2 * * *"], "timeZone": "Asia/Tokyo"},
    )
    assert put.status_code in {200, 201}, put.text
    fire = dt.datetime.fromisoformat(put.json()["nextFireAt"].replace("Z", "+00:00"))

    # NEXT and LAST are in the zone of the machine the command runs on: New York here.
    result = jobport("schedules", "list", f"{project}/nightly", TZ="America/New_York")

    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == [
        "NAME", "STATE", "WHEN", "TIME", "ZONE",
        "NEXT", "(America/New_York)", "LAST", "(America/New_York)",
    ]  # fmt: skip
    in_new_york = fire.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S")
    assert row.split() == [
        "night", "active", "30", "2", "*", "*", "*", "Asia/Tokyo", *in_new_york.split(), "-"
    ]  # fmt: skip


def test_a_foreach_run_with_a_context_its_items_and_one_items_log(
    jobport: Run, api: httpx2.Client, project: str
) -> None:
    make_job(
        api,
        project,
        "each",
        foreach={"source": {"items": [{"n": 1}, {"n": 2}, {"n": 3}]}, "query": {"n": {"$ne": 2}}},
        steps=[sh("say", "echo {{ context.greeting }} {{ item.n }}; test {{ item.n }} != 3")],
    )
    ran = jobport("run", f"{project}/each", "--context", '{"greeting": "hi"}', "--wait")
    assert ran.returncode == 1, ran.stderr  # item 3 fails
    run_id = api.get(f"/api/v1/projects/{project}/executions").json()["items"][0]["id"]

    listed = jobport("executions", "items", run_id)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("0", "succeeded"), ("1", "failed")]
    failed = jobport("executions", "items", run_id, "--status", "failed", "--json")
    assert [i["item"] for i in json.loads(failed.stdout)["items"]] == [{"n": 3}]

    one = jobport("executions", "logs", run_id, "--item", "1")
    assert one.returncode == 0 and one.stdout.splitlines() == ["hi 3"]
    assert "item 1 failed" in one.stderr

    for bad in ("{", "[1]"):
        refused = jobport("run", f"{project}/each", "--context", bad)
        assert refused.returncode == 2 and "--context" in refused.stderr
