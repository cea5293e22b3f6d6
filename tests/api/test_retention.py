"""Retention as an operator and a job author meet it: the background pruner of a real
server (counted in /metrics), a log removed before its run (said by GET .../logs),
`jobport db prune [--dry-run]`, and a job's `retention` checked at write."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import uuid
from typing import Any

import httpx2
import pytest

from conftest import Server, sqlite_path, wait_for

from .test_metrics import scrape, value


def _project(api: httpx2.Client) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/projects", json={"name": name}).status_code == 201
    return name


def _job(api: httpx2.Client, project: str, **spec: Any) -> str:
    name = f"j-{uuid.uuid4().hex[:8]}"
    body = {
        "name": name,
        "steps": [{"name": "s", "kind": "command", "config": {"command": "echo one; echo two"}}],
        **spec,
    }
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return name


def _run(api: httpx2.Client, project: str, job: str) -> dict[str, Any]:
    run = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute?wait=30").json()
    assert run["status"] == "succeeded", run
    return run  # type: ignore[no-any-return]


def _runs(api: httpx2.Client, project: str, job: str) -> list[str]:
    page = api.get(f"/api/v1/projects/{project}/executions", params={"job": job}).json()
    return [x["id"] for x in page["items"]]


def _ended_days_ago(server: Server, execution_id: str, days: int) -> None:
    path = sqlite_path(server.database_url)
    assert path is not None
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE executions SET finished_at = datetime('now', ?) WHERE id = ?",
            (f"-{days} days", execution_id),
        )


def test_the_server_prunes_in_the_background_and_counts_it(make_server: Any) -> None:
    server = make_server(prune_interval_seconds=0.3, retention_runs_per_job=1).start()
    with server.client() as api:
        project = _project(api)
        capped = _job(api, project)
        runs = [_run(api, project, capped) for _ in range(3)]
        wait_for(lambda: _runs(api, project, capped) == [runs[-1]["id"]], timeout=15)

        # A job of its own policy (no run limit): its run stays, its log goes at 30 days.
        unlimited = _job(api, project, retention={"runs": 0})
        old = _run(api, project, unlimited)
        logs = api.get(f"/api/v1/executions/{old['id']}/logs").json()
        assert {"one", "two"} <= {x["text"] for x in logs["items"]}
        assert logs["logsPruned"] is False
        _ended_days_ago(server, old["id"], 40)

        def pruned() -> Any:
            answer = api.get(f"/api/v1/executions/{old['id']}/logs").json()
            return answer if answer["logsPruned"] else None

        answer = wait_for(pruned, timeout=15)
        assert answer["items"] == [] and answer["finished"] is True
        run = api.get(f"/api/v1/executions/{old['id']}").json()
        assert run["status"] == "succeeded" and run["logLines"] == old["logLines"] > 0

        samples = scrape(api)
        assert value(samples, "jobport_pruned_total", what="runs") == 2
        lines = runs[0]["logLines"] + runs[1]["logLines"] + old["logLines"]
        assert value(samples, "jobport_pruned_total", what="log_lines") == lines


def _prune(server: Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jobport.cli", "db", "prune", *args],
        env={**os.environ, "JOBPORT_DATABASE_URL": server.database_url},
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_db_prune_says_what_would_go_then_removes_it(make_server: Any) -> None:
    server = make_server(prune_interval_seconds=0).start()  # no background pruning
    with server.client() as api:
        project = _project(api)
        job = _job(api, project, retention={"runs": 1})
        runs = [_run(api, project, job) for _ in range(3)]
        lines = runs[0]["logLines"] + runs[1]["logLines"]

        dry = _prune(server, "--dry-run")
        assert f"would remove: 2 runs, {lines} log lines, 0 items" in dry
        assert sorted(_runs(api, project, job)) == sorted(r["id"] for r in runs)

        assert f"removed: 2 runs, {lines} log lines, 0 items" in _prune(server)
        assert _runs(api, project, job) == [runs[-1]["id"]]
        assert "removed: 0 runs, 0 log lines" in _prune(server)


@pytest.mark.parametrize(
    "retention",
    [
        {"days": -1},
        {"runs": -5},
        {"days": "7"},
        {"days": True},
        {"days": 1.5},
        {"logDays": 10**9},
        {"days": 7, "logDays": 30},
        {"weeks": 2},
        [],
        "90d",
    ],
)
def test_a_bad_retention_is_refused_before_the_job_is_stored(
    api: httpx2.Client, retention: Any
) -> None:
    project = _project(api)
    body = {
        "name": "kept",
        "steps": [{"name": "s", "kind": "command", "config": {"command": "true"}}],
        "retention": retention,
    }
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 422, response.text
    assert {"error", "message"} <= response.json().keys()
    assert api.get(f"/api/v1/projects/{project}/jobs/kept").status_code == 404


def test_a_jobs_retention_is_kept_in_its_definition(api: httpx2.Client) -> None:
    project = _project(api)
    job = _job(api, project, retention={"days": 7, "logDays": 2})
    answer = api.get(f"/api/v1/projects/{project}/jobs/{job}").json()
    assert answer["retention"] == {"days": 7, "runs": None, "logDays": 2}
