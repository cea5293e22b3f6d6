"""`jobport executions logs` of a run whose log lines retention removed: a note on stderr,
exit 0, in every mode (plain, --follow, --item, --json); --json keeps `logsPruned`."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import Server, sqlite_path

NOTE = "· the log lines of this run were removed by the retention policy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own that prunes nothing by itself: the tests prune when they mean to."""
    workdir = tmp_path_factory.mktemp("pruned")
    srv = Server(f"sqlite:///{workdir / 'jobport.db'}", workdir, prune_interval_seconds=0)
    yield srv.start()
    srv.stop()


def _jobport(server: Server, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOBPORT_URL": server.url, "JOBPORT_KEY": str(server.key)}
    return subprocess.run(
        [sys.executable, "-m", "jobport.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _run(api: httpx2.Client, project: str) -> dict[str, Any]:
    step = {"name": "say", "kind": "command", "config": {"command": "echo first; echo second"}}
    body = {"name": "talker", "steps": [step], "retention": {"logDays": 1}}
    if api.get(f"/api/v1/projects/{project}/jobs/talker").status_code == 404:
        assert api.post(f"/api/v1/projects/{project}/jobs", json=body).status_code == 201
    response = api.post(f"/api/v1/projects/{project}/jobs/talker/execute", params={"wait": 30})
    assert response.status_code == 200, response.text
    run = dict(response.json())
    assert run["status"] == "succeeded", run
    return run


def _prune_as_if_ended_days_ago(server: Server, execution_id: str, days: int) -> None:
    """Make the run end `days` ago, then one retention pass (what `jobport db prune` runs)."""
    from jobport.services import retention
    from jobport.settings import Settings
    from jobport.store.db import Database

    path = sqlite_path(server.database_url)
    assert path is not None
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE executions SET finished_at = datetime('now', ?) WHERE id = ?",
            (f"-{days} days", execution_id),
        )
    database = Database(server.database_url, pool=False)
    try:
        pruned = retention.prune(database, Settings(database_url=server.database_url))
    finally:
        database.dispose()
    assert pruned.logs == 1, pruned


@pytest.fixture
def runs(server: Server, api: httpx2.Client, project: str) -> tuple[str, str]:
    """(a run whose log lines were pruned, a run of the same job that keeps them)."""
    old, kept = _run(api, project), _run(api, project)
    _prune_as_if_ended_days_ago(server, old["id"], 2)
    assert api.get(f"/api/v1/executions/{old['id']}/logs").json()["logsPruned"] is True
    return old["id"], kept["id"]


@pytest.mark.parametrize("mode", [[], ["--follow"], ["--item", "0"], ["--item", "0", "--follow"]])
def test_logs_of_a_pruned_run_say_so_on_stderr_and_exit_0(
    server: Server, runs: tuple[str, str], tmp_path: Path, mode: list[str]
) -> None:
    pruned, kept = runs
    said = _jobport(server, tmp_path, "executions", "logs", pruned, *mode)
    assert said.returncode == 0, said.stderr
    assert said.stdout == ""
    assert NOTE in said.stderr
    assert "JOBPORT_LOG_RETENTION_DAYS" in said.stderr and "retention.logDays" in said.stderr

    if "--item" in mode:
        return  # not a foreach run: the kept run has no item 0 lines to compare
    shown = _jobport(server, tmp_path, "executions", "logs", kept, *mode)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["first", "second"]
    assert "retention" not in shown.stderr


@pytest.mark.parametrize("follow", [[], ["--follow"]])
def test_logs_json_keeps_logs_pruned(
    server: Server, runs: tuple[str, str], tmp_path: Path, follow: list[str]
) -> None:
    pruned, kept = runs
    said = _jobport(server, tmp_path, "executions", "logs", pruned, "--json", *follow)
    assert said.returncode == 0, said.stderr
    objects = [json.loads(x) for x in said.stdout.splitlines()]
    assert objects == [
        {"nextAfter": 0, "status": "succeeded", "finished": True, "logsPruned": True}
    ]
    assert NOTE in said.stderr

    shown = _jobport(server, tmp_path, "executions", "logs", kept, "--json", *follow)
    assert shown.returncode == 0, shown.stderr
    *lines, end = [json.loads(x) for x in shown.stdout.splitlines()]
    assert [x["text"] for x in lines if x["stream"] == "stdout"] == ["first", "second"]
    assert end == {
        "nextAfter": lines[-1]["seq"],
        "status": "succeeded",
        "finished": True,
        "logsPruned": False,
    }
    assert "retention" not in shown.stderr
