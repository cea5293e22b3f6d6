"""A run whose log lines retention removed: its page says so, with the date and the settings
that decide it, instead of an empty log; so does the first line of its download, and the
live log of a page made before the lines went."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from conftest import Server, sqlite_path
from console.conftest import log_in


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own that prunes nothing by itself: the tests prune when they mean to."""
    workdir = tmp_path_factory.mktemp("pruned")
    srv = Server(f"sqlite:///{workdir / 'jobport.db'}", workdir, prune_interval_seconds=0)
    yield srv.start()
    srv.stop()


def _job(api: httpx2.Client, project: str, name: str, **spec: Any) -> str:
    step = {"name": "say", "kind": "command", "config": {"command": "echo first; echo second"}}
    response = api.post(
        f"/api/v1/projects/{project}/jobs", json={"name": name, "steps": [step], **spec}
    )
    assert response.status_code == 201, response.text
    return name


def _run(api: httpx2.Client, project: str, job: str) -> dict[str, Any]:
    response = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute", params={"wait": 30})
    assert response.status_code == 200, response.text
    run = dict(response.json())
    assert run["status"] == "succeeded" and run["logLines"] > 0, run
    return run


def _prune_as_if_ended_days_ago(server: Server, execution_id: str, days: int) -> dt.datetime:
    """Make the run end `days` ago, then one retention pass (what `jobport db prune` runs);
    returns when the run's log lines were pruned, as stored."""
    from jobport.services import retention
    from jobport.settings import Settings
    from jobport.store.db import Database
    from jobport.store.tables import executions

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
        assert pruned.logs >= 1, pruned
        with database.read() as conn:
            at = conn.execute(
                select(executions.c.logs_pruned_at).where(executions.c.id == execution_id)
            ).scalar_one()
    finally:
        database.dispose()
    assert at is not None
    return at  # type: ignore[no-any-return]


def test_a_pruned_runs_page_and_download_say_when_and_by_which_setting(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = _job(api, project, "short-logs", retention={"logDays": 1})
    old, recent = _run(api, project, job), _run(api, project, job)
    at = _prune_as_if_ended_days_ago(server, old["id"], 2)
    assert api.get(f"/api/v1/executions/{old['id']}/logs").json()["logsPruned"] is True

    log_in(tab, server)
    tab.goto(f"{server.url}/console/runs/{old['id']}")
    expect(tab.locator("#run-status")).to_have_text("succeeded")
    note = tab.locator("#log-pruned")
    expect(note).to_contain_text(
        "The log lines of this run were removed by the retention policy on "
        f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({old['logLines']} lines)."
    )
    expect(note).to_contain_text(
        "The job short-logs keeps log lines 1 day after a run ends (its retention.logDays; "
        "the server's JOBPORT_LOG_RETENTION_DAYS is 30)."
    )
    expect(tab.locator("pre.log")).to_have_count(0)  # no empty log beside it
    expect(tab.get_by_label("Follow")).to_have_count(0)

    with tab.expect_download() as download:
        tab.get_by_role("link", name="Download").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines() == [note.inner_text()]

    # The job's other run keeps its lines: its page shows them and says nothing of pruning.
    tab.goto(f"{server.url}/console/runs/{recent['id']}")
    expect(tab.locator("pre.log")).to_contain_text("second")
    expect(tab.locator("#log-pruned")).to_have_count(0)
    with tab.expect_download() as download:
        tab.get_by_role("link", name="Download").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert [x.rsplit(" ", 1)[-1] for x in lines if "stdout" in x] == ["first", "second"]
    assert not any("retention" in x for x in lines)


def test_lines_pruned_after_the_page_was_made_are_said_by_the_live_log(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = _job(api, project, "server-policy")  # no retention of its own: the server's
    run = _run(api, project, job)
    log_in(tab, server)

    def prune_then_follow(route: Any) -> None:
        # The page is made; the live log's request waits until retention has run.
        _prune_as_if_ended_days_ago(server, run["id"], 40)
        route.continue_()

    tab.route(re.compile(r"/api/v1/executions/[^/?]+/logs\?follow=true"), prune_then_follow)
    tab.goto(f"{server.url}/console/runs/{run['id']}")
    note = tab.locator("#log-pruned")
    expect(note).to_contain_text("The log lines of this run were removed by the retention policy")
    expect(note).to_contain_text("JOBPORT_LOG_RETENTION_DAYS")
    expect(note).to_contain_text("retention.logDays")
    expect(tab.locator("#log-note")).to_have_text("The run ended: succeeded.")
    expect(tab.locator("pre.log")).to_have_count(0)
    tab.unroute(re.compile(r"/api/v1/executions/[^/?]+/logs\?follow=true"))

    # Made again, the page says it itself, with the server's policy.
    tab.reload()
    expect(note).to_contain_text(
        "Log lines are kept 30 days after a run ends (the server's JOBPORT_LOG_RETENTION_DAYS; "
        "a job's retention.logDays overrides it)."
    )
    expect(tab.locator("pre.log")).to_have_count(0)
