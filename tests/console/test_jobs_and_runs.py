"""Jobs and runs in the console: a job's run form, a run's live log and state, Cancel, the
result table, the runs list; a Viewer sees no action and is refused when forcing one."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx2
from playwright.sync_api import expect

from conftest import Server, wait_for
from console.conftest import log_in

TICKER = {
    "description": "prints a line a second",
    "labels": {"team": "ops"},
    "parameters": {"count": 3, "word": "tick"},
    "parametersSchema": {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 1, "maximum": 5, "description": "lines"},
            "word": {"type": "string", "maxLength": 20, "description": "what each line says"},
        },
        "additionalProperties": False,
    },
    "steps": [
        {
            "name": "tick",
            "kind": "command",
            "config": {
                "command": 'for i in $(seq 1 {{ params.count }}); do echo "{{ params.word }} $i"; '
                "sleep 1; done"
            },
        }
    ],
}


def _job(api: httpx2.Client, project: str, name: str, **spec: Any) -> str:
    response = api.post(f"/api/v1/projects/{project}/jobs", json={"name": name, **spec})
    assert response.status_code == 201, response.text
    return name


def _command(name: str, command: str, **spec: Any) -> dict[str, Any]:
    return {"steps": [{"name": name, "kind": "command", "config": {"command": command}}], **spec}


def _run(api: httpx2.Client, project: str, job: str, wait: float | None = None) -> dict[str, Any]:
    params = {"wait": wait} if wait else {}
    response = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute", json={}, params=params)
    assert response.status_code in (200, 202), response.text
    return dict(response.json())


def _run_id(tab: Any) -> str:
    found = re.search(r"/console/runs/([^/?#]+)$", tab.url)
    assert found, tab.url
    return found.group(1)


def test_a_job_run_from_its_page_shows_its_log_live_and_then_succeeded(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    _job(api, project, "ticker", **TICKER)
    _job(api, project, "other", **_command("x", "true", labels={"team": "data"}))
    log_in(tab, server)
    tab.get_by_role("link", name=project).click()
    # The list: searchable, labelled, and filtered by a label.
    expect(tab.get_by_role("link", name="ticker")).to_be_visible()
    tab.get_by_role("link", name="team:ops").click()
    expect(tab.get_by_role("link", name="ticker")).to_be_visible()
    expect(tab.get_by_role("link", name="other", exact=True)).to_have_count(0)
    tab.get_by_role("link", name="Clear").click()
    tab.get_by_label("Search").fill("oth")
    tab.get_by_role("button", name="Filter").click()
    expect(tab.get_by_role("link", name="other", exact=True)).to_be_visible()
    expect(tab.get_by_role("link", name="ticker")).to_have_count(0)
    tab.get_by_role("link", name="Clear").click()
    tab.get_by_role("link", name="ticker").click()

    # The form is made from the schema: the constraints as attributes, hints, defaults.
    count, word = tab.get_by_label("count"), tab.get_by_label("word")
    assert count.get_attribute("type") == "number" and count.get_attribute("max") == "5"
    assert word.get_attribute("maxlength") == "20" and word.input_value() == "tick"
    expect(count).to_have_accessible_description("lines; at least 1, at most 5")
    count.fill("3")
    word.fill("beat")
    tab.get_by_label("delta").check()
    tab.evaluate("window.samePage = true")
    tab.get_by_role("button", name="Run").click()
    tab.wait_for_url(re.compile(r"/console/runs/[^/]+$"))
    run_id = _run_id(tab)
    tab.evaluate("window.samePage = true")

    log, status = tab.locator("pre.log"), tab.locator("#run-status")
    expect(log).to_contain_text("beat 1", timeout=10_000)
    # The first line is shown while the run still runs: it arrived live.
    assert status.inner_text() in ("queued", "running"), status.inner_text()
    assert "beat 3" not in log.inner_text()
    expect(status).to_have_text("succeeded", timeout=15_000)
    expect(log).to_contain_text("beat 3")
    assert tab.evaluate("window.samePage") is True  # no reload: htmx and SSE did it
    expect(tab.get_by_role("row", name=re.compile(r"tick\s+succeeded"))).to_be_visible()
    stored = api.get(f"/api/v1/executions/{run_id}").json()
    assert stored["parameters"] == {"count": 3, "word": "beat"}
    assert (stored["mode"], stored["trigger"]) == ("delta", "console")

    # The whole log as a download, and the run on the job's page.
    with tab.expect_download() as download:
        tab.get_by_role("link", name="Download").click()
    text = Path(download.value.path()).read_text()
    assert [line.rsplit(" ", 2)[-2:] for line in text.splitlines() if "stdout" in line] == [
        ["beat", "1"],
        ["beat", "2"],
        ["beat", "3"],
    ]
    assert download.value.suggested_filename == f"ticker-{run_id}.log"
    tab.get_by_role("link", name="ticker").first.click()
    expect(tab.get_by_role("link", name=run_id)).to_be_visible()


def test_a_value_the_schema_refuses_is_shown_next_to_its_field_in_the_apis_words(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "share": {"type": "number", "exclusiveMaximum": 1, "description": "a fraction"},
            "level": {"enum": ["low", "high"]},
            "dry": {"type": "boolean"},
        },
        "required": ["level"],
        "additionalProperties": False,
    }
    _job(api, project, "picky", parametersSchema=schema, **_command("x", "true"))
    refused = api.post(
        f"/api/v1/projects/{project}/jobs/picky/execute",
        json={"parameters": {"share": 1, "level": "low", "dry": False}},
    )
    assert refused.status_code == 422
    reason = next(
        d["reason"] for d in refused.json()["details"] if d["field"] == "parameters.share"
    )

    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/picky")
    level = tab.get_by_label("level")
    assert level.evaluate("e => e.tagName") == "SELECT" and level.get_attribute("required") == ""
    assert tab.get_by_label("dry").get_attribute("type") == "checkbox"
    tab.get_by_label("share").fill("1")
    level.select_option("low")
    tab.get_by_role("button", name="Run").click()
    share = tab.get_by_label("share")
    expect(share).to_have_accessible_description(re.compile(re.escape(reason)))
    expect(share).to_have_attribute("aria-invalid", "true")
    assert share.input_value() == "1"  # what the user typed stays
    assert level.input_value() == '"low"'
    expect(tab.get_by_role("alert")).to_contain_text(reason)
    assert api.get(f"/api/v1/projects/{project}/executions").json()["items"] == []


def test_cancelling_a_long_run_from_its_page_ends_it_cancelled(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    _job(api, project, "long", **_command("wait", "echo started; sleep 60"))
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/long")
    tab.get_by_role("button", name="Run").click()
    tab.wait_for_url(re.compile(r"/console/runs/[^/]+$"))
    run_id = _run_id(tab)
    expect(tab.locator("pre.log")).to_contain_text("started")
    tab.get_by_role("link", name="Cancel run").click()
    expect(tab.get_by_role("heading", name=f"Cancel run {run_id}?")).to_be_visible()
    tab.get_by_role("button", name="Yes, cancel the run").click()
    tab.wait_for_url(f"**/console/runs/{run_id}")
    expect(tab.locator("#run-status")).to_have_text("cancelled", timeout=10_000)
    expect(tab.get_by_role("link", name="Cancel run")).to_have_count(0)
    expect(tab.locator("#log-note")).to_contain_text("cancelled")
    assert api.get(f"/api/v1/executions/{run_id}").json()["status"] == "cancelled"
    tab.go_back()  # the confirmation again: it says the run ended, and offers nothing
    tab.reload()
    expect(tab.get_by_role("alert")).to_have_text("this run already ended cancelled")
    expect(tab.get_by_role("button", name="Yes, cancel the run")).to_have_count(0)


def test_a_viewer_sees_no_run_or_cancel_and_forcing_either_is_refused(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    _job(api, project, "long", **_command("wait", "echo started; sleep 30"))
    run = _run(api, project, "long")
    username, password = f"viewer-{uuid.uuid4().hex[:8]}", "a viewer's long passphrase"
    created = api.post(
        "/api/v1/users",
        json={
            "username": username,
            "password": password,
            "roles": [{"role": "Viewer", "project": project}],
        },
    )
    assert created.status_code == 201, created.text
    try:
        log_in(tab, server, username, password)
        tab.goto(f"{server.url}/console/projects/{project}/jobs/long")
        expect(tab.get_by_role("heading", name="Recent runs")).to_be_visible()
        expect(tab.get_by_role("link", name=run["id"])).to_be_visible()
        expect(tab.get_by_role("button", name="Run")).to_have_count(0)
        tab.get_by_role("link", name=run["id"]).click()
        expect(tab.locator("#run-status")).to_have_text("running", timeout=10_000)
        expect(tab.get_by_role("link", name="Cancel run")).to_have_count(0)

        csrf = tab.locator('meta[name="csrf-token"]').get_attribute("content")
        assert csrf
        forced_run = tab.request.post(
            f"{server.url}/console/projects/{project}/jobs/long/run",
            form={"csrf": csrf, "mode": "full"},
            max_redirects=0,
        )
        assert forced_run.status == 403
        assert "Not allowed" in forced_run.text() and "jobs:execute" in forced_run.text()
        forced_cancel = tab.request.post(
            f"{server.url}/console/runs/{run['id']}/cancel", form={"csrf": csrf}, max_redirects=0
        )
        assert forced_cancel.status == 403
        assert "executions:cancel" in forced_cancel.text()
        tab.goto(f"{server.url}/console/runs/{run['id']}/cancel")
        expect(tab.get_by_role("heading", name="Not allowed")).to_be_visible()

        runs = api.get(f"/api/v1/projects/{project}/executions").json()["items"]
        assert [r["id"] for r in runs] == [run["id"]]  # nothing was started
        assert runs[0]["status"] == "running"  # nor cancelled
    finally:
        api.post(f"/api/v1/executions/{run['id']}/cancel")


def test_a_python_step_returning_records_shows_them_as_a_table_with_their_schema(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    steps = [
        {
            "name": "rows",
            "kind": "python",
            "config": {"callable": "fixtures_steps:records", "kwargs": {"n": 3}},
        }
    ]
    _job(api, project, "rows", steps=steps)
    run = _run(api, project, "rows", wait=20)
    assert run["status"] == "succeeded", run
    log_in(tab, server)
    tab.goto(f"{server.url}/console/runs/{run['id']}")
    table = tab.locator("table.result")
    expect(table.locator("caption")).to_have_text("3 records")
    headers = [h.inner_text().split() for h in table.locator("thead th").all()]
    assert headers == [
        ["id", "integer"],
        ["name", "string"],
        ["score", "number"],
        ["ok", "boolean"],
    ]
    rows = [
        [c.inner_text() for c in r.locator("td").all()] for r in table.locator("tbody tr").all()
    ]
    assert rows == [
        ["0", "row 0", "0.0", "true"],
        ["1", "row 1", "1.5", "false"],
        ["2", "row 2", "3.0", "true"],
    ]


def test_the_runs_list_filters_by_status_and_pages_across_projects(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    _job(api, project, "fine", **_command("x", "true"))
    _job(api, project, "broken", **_command("x", "exit 3"))
    fine, broken = _run(api, project, "fine", wait=20), _run(api, project, "broken", wait=20)
    assert (fine["status"], broken["status"]) == ("succeeded", "failed")
    log_in(tab, server)
    tab.get_by_role("link", name="Runs").first.click()
    tab.get_by_label("Project").select_option(project)
    tab.get_by_label("Status").select_option("failed")
    tab.get_by_role("button", name="Filter").click()
    expect(tab.get_by_role("link", name=broken["id"])).to_be_visible()
    expect(tab.get_by_role("link", name=fine["id"])).to_have_count(0)
    tab.get_by_label("Status").select_option("succeeded")
    tab.get_by_role("button", name="Filter").click()
    expect(tab.get_by_role("link", name=fine["id"])).to_be_visible()
    expect(tab.get_by_role("link", name=broken["id"])).to_have_count(0)

    # Across projects, newest first, a page at a time: every run once, in order.
    other = f"p-{uuid.uuid4().hex[:10]}"
    assert api.post("/api/v1/projects", json={"name": other}).status_code == 201
    job = f"pager-{uuid.uuid4().hex[:6]}"
    for p in (project, other):
        _job(api, p, job, **_command("x", "true"))
    made = [_run(api, p, job)["id"] for p in (project, other, project, project, other)]
    tab.goto(f"{server.url}/console/runs?job={job}&limit=2")
    seen: list[str] = []
    while True:
        seen += [a.inner_text() for a in tab.locator("table.runs tbody tr td:first-child a").all()]
        more = tab.get_by_role("link", name="Older runs")
        if not more.count():
            break
        more.click()
    assert seen == made[::-1]
    wait_for(
        lambda: all(
            api.get(f"/api/v1/executions/{i}").json()["status"] == "succeeded" for i in made
        )
    )


def test_a_foreach_run_from_its_page_takes_a_context_and_shows_each_items_log(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    _job(
        api,
        project,
        "each",
        parameters={"greeting": "hi", "loud": True},  # no schema: the declared ones
        context={"region": "us"},
        foreach={"source": {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}},
        **_command("item", 'echo "{{ params.greeting }} {{ item.id }} {{ context.region }}"'),
    )
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/each")
    context = tab.get_by_label("Context (JSON object)")
    assert '"region": "us"' in context.input_value()
    tab.get_by_label("greeting").fill("hey")
    expect(tab.get_by_label("loud")).to_be_checked()  # its default
    tab.get_by_label("loud").uncheck()
    context.fill("{region")
    tab.get_by_role("button", name="Run").click()
    expect(context).to_have_accessible_description(re.compile("not valid JSON"))
    context.fill("[1]")  # JSON, but not an object: the service says so
    tab.get_by_role("button", name="Run").click()
    expect(context).to_have_accessible_description(re.compile("must be an object"))
    assert tab.get_by_label("greeting").input_value() == "hey"
    expect(tab.get_by_label("loud")).not_to_be_checked()  # as the user left it
    context.fill('{"region": "eu"}')
    tab.get_by_role("button", name="Run").click()
    tab.wait_for_url(re.compile(r"/console/runs/[^/]+$"))
    expect(tab.locator("#run-status")).to_have_text("succeeded", timeout=15_000)
    expect(tab.locator("p.summary")).to_contain_text("3 items: 3 succeeded, 0 failed")
    expect(tab.locator("pre.log")).to_contain_text("hey 3 eu")
    run = api.get(f"/api/v1/executions/{_run_id(tab)}").json()
    assert (run["parameters"], run["context"]) == (
        {"greeting": "hey", "loud": False},
        {"region": "eu"},
    )
    tab.get_by_role("link", name="item 1's log").click()
    expect(tab.get_by_role("heading", name="Log of item 1")).to_be_visible()
    expect(tab.locator("#log-note")).to_contain_text("ended")
    assert "hey 2 eu" in tab.locator("pre.log").inner_text()
    assert "hey 1 eu" not in tab.locator("pre.log").inner_text()
