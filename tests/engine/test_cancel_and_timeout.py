"""Cancel and timeouts end runs within the grace period, for command and Python steps."""

from __future__ import annotations

import time
from typing import Any

import httpx2

from api.test_execute import execute, final, make_job, py, sh
from conftest import wait_for


def running(api: httpx2.Client, execution_id: str) -> None:
    def is_running() -> bool:
        body = api.get(f"/api/v1/executions/{execution_id}").json()
        return body["status"] == "running" and body["steps"][0]["status"] == "running"

    wait_for(is_running)


def cancel_and_time(api: httpx2.Client, execution_id: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = api.post(f"/api/v1/executions/{execution_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelling"
    done = final(api, execution_id)
    return done, time.monotonic() - started


def test_cancel_kills_a_running_command_step_and_its_children(
    api: httpx2.Client, project: str, tmp_path: Any
) -> None:
    marker = tmp_path / "survived"
    job = make_job(
        api,
        project,
        steps=[
            sh("sleep", f"(sleep 3; touch {marker}) & sleep 60"),
        ],
    )
    run = execute(api, project, job["name"]).json()
    running(api, run["id"])
    done, took = cancel_and_time(api, run["id"])
    assert done["status"] == "cancelled"
    assert done["error"]["code"] == "cancelled"
    assert done["steps"][0]["status"] == "cancelled"
    assert took < 2 + 1.5  # the grace period (2 s in tests) plus a heartbeat
    time.sleep(3.5)
    assert not marker.exists(), "a child of the cancelled step survived its process group"


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace_period(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[sh("stubborn", "trap '' TERM; sleep 60")])
    run = execute(api, project, job["name"]).json()
    running(api, run["id"])
    done, took = cancel_and_time(api, run["id"])
    assert done["status"] == "cancelled"
    assert 1.5 < took < 2 + 2.0


def test_cancel_stops_a_busy_python_step_at_once(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[py("spin", "fixtures_steps:busy", seconds=60)])
    run = execute(api, project, job["name"]).json()
    running(api, run["id"])
    done, took = cancel_and_time(api, run["id"])
    assert done["status"] == "cancelled"
    assert took < 1.5


def test_cancel_ends_a_python_step_blocked_in_sleep_within_the_grace_period(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[py("nap", "fixtures_steps:sleep", seconds=60)])
    run = execute(api, project, job["name"]).json()
    running(api, run["id"])
    done, took = cancel_and_time(api, run["id"])
    assert done["status"] == "cancelled"
    assert took < 2 + 2.5
    # The worker that held the stuck step was replaced; the server still runs jobs.
    quick = make_job(api, project, steps=[py("ok", "fixtures_steps:echo", a=1)])
    assert execute(api, project, quick["name"], wait=30).json()["status"] == "succeeded"


def test_cancelling_a_queued_run_ends_it_without_running(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, maxConcurrent=1, steps=[sh("s", "sleep 30")])
    first = execute(api, project, job["name"]).json()
    second = execute(api, project, job["name"]).json()
    response = api.post(f"/api/v1/executions/{second['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["startedAt"] is None
    api.post(f"/api/v1/executions/{first['id']}/cancel")
    assert final(api, first["id"])["status"] == "cancelled"


def test_cancel_of_a_finished_run_is_a_409(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("a", "true")])
    run = execute(api, project, job["name"], wait=30).json()
    response = api.post(f"/api/v1/executions/{run['id']}/cancel")
    assert response.status_code == 409 and response.json()["error"] == "already_finished"


def test_a_job_timeout_ends_the_run_timed_out(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, timeoutSeconds=1, steps=[sh("slow", "sleep 30")])
    started = time.monotonic()
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "timed_out"
    assert body["error"]["code"] == "timed_out"
    assert body["steps"][0]["status"] == "timed_out"
    assert time.monotonic() - started < 1 + 2 + 1.5


def test_a_step_timeout_ends_the_run_timed_out(api: httpx2.Client, project: str) -> None:
    job = make_job(
        api,
        project,
        steps=[
            sh("slow", "sleep 30", timeoutSeconds=0.5),
            sh("after", "echo never", needs=["slow"]),
        ],
    )
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "timed_out"
    assert "slow" in body["error"]["message"]
    assert [s["status"] for s in body["steps"]] == ["timed_out", "skipped"]


def test_a_python_step_that_kills_its_worker_fails_the_run_as_worker_lost(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[py("crash", "fixtures_steps:hard_crash")])
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "worker_lost"
    quick = make_job(api, project, steps=[py("ok", "fixtures_steps:echo", a=1)])
    assert execute(api, project, quick["name"], wait=30).json()["status"] == "succeeded"


def test_step_retries_run_the_step_again(api: httpx2.Client, project: str, tmp_path: Any) -> None:
    marker = str(tmp_path / "flaky-step")
    job = make_job(
        api,
        project,
        steps=[
            {
                **py("flaky", "fixtures_steps:flaky", marker=marker),
                "retries": 1,
                "retryDelaySeconds": 0.1,
            },
        ],
    )
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "succeeded"
    assert body["result"] == "second call works"


def test_job_retries_start_a_new_execution_after_the_backoff(
    api: httpx2.Client, project: str, tmp_path: Any
) -> None:
    marker = str(tmp_path / "flaky-job")
    job = make_job(
        api,
        project,
        retries=2,
        retryDelaySeconds=0.5,
        steps=[py("flaky", "fixtures_steps:flaky", marker=marker)],
    )
    first = execute(api, project, job["name"], wait=30).json()
    assert first["status"] == "failed"

    def retried() -> dict[str, Any] | None:
        runs = api.get(
            f"/api/v1/projects/{project}/executions", params={"job": job["name"]}
        ).json()["items"]
        return runs[0] if len(runs) == 2 and runs[0]["status"] == "succeeded" else None

    retry = wait_for(retried)
    assert retry["trigger"] == "retry" and retry["attempt"] == 2
    assert retry["retryOf"] == first["id"]
