"""Schedules in the console (made, previewed as typed, edited, disabled, their fires) and the
"call this from code" snippets, run as shown against the server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
from starlette.requests import Request

from conftest import ROOT, Server
from console.conftest import log_in
from jobport.console.pages.snippets import KEY_PLACEHOLDER, key_snippets
from jobport.domain.schedules import Timetable

SYDNEY = ZoneInfo("Australia/Sydney")


def make_job(api: httpx2.Client, project: str, command: str = "echo hello {{ params.who }}") -> str:
    name = f"job-{uuid.uuid4().hex[:8]}"
    job = {
        "name": name,
        "parameters": {"who": "world"},
        "steps": [{"name": "greet", "kind": "command", "config": {"command": command}}],
    }
    response = api.post(f"/api/v1/projects/{project}/jobs", json=job)
    assert response.status_code == 201, response.text
    return name


def put_schedule(api: httpx2.Client, project: str, job: str, name: str, **spec: Any) -> None:
    body = {"crons": ["0 10 * * *"], "timeZone": "UTC", **spec}
    url = f"/api/v1/projects/{project}/jobs/{job}/schedules/{name}"
    response = api.put(url, json=body)
    assert response.status_code == 201, response.text


def next_fires(cron: str, zone: ZoneInfo, count: int) -> list[dt.datetime]:
    """When the cron fires next in the zone (the domain's timetable), as local times."""
    table = Timetable(zone=zone, iana=str(zone), crons=(cron,))
    fires = table.fires_after(dt.datetime.now(dt.UTC))
    return [next(fires).local for _ in range(count)]


def utc_text(local: dt.datetime) -> str:
    return local.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def wall(local: dt.datetime) -> str:
    """How the console shows a local time: wall time, zone abbreviation, offset."""
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({offset[:3]}:{offset[3:]})"


def preview_rows(tab: Any) -> list[list[str]]:
    rows = tab.locator("#preview table tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def wait_for_preview(tab: Any, first_utc: str, first_local: str) -> list[list[str]]:
    first = tab.locator("#preview table tbody tr").first
    first.locator("td", has_text=first_utc).wait_for()
    first.locator("td", has_text=first_local).wait_for()
    return preview_rows(tab)


def test_a_schedule_made_in_the_form_with_a_windows_zone_previews_as_typed_before_saving(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = make_job(api, project)
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/schedules")
    assert tab.get_by_text("This job has no schedule yet.").is_visible()
    tab.get_by_role("link", name="Add schedule").click()
    tab.get_by_label("Name").fill("nightly")
    tab.get_by_label("Time zone").fill("AUS Eastern Standard Time")
    tab.get_by_label("Crons").press_sequentially("0 10 * * *")

    expected = next_fires("0 10 * * *", SYDNEY, 5)
    rows = wait_for_preview(tab, utc_text(expected[0]), expected[0].strftime("%Y-%m-%d 10:00:00"))
    assert len(rows) == 5
    for row, local in zip(rows, expected, strict=True):
        assert row[0] == utc_text(local)  # UTC
        assert row[1] == wall(local)  # e.g. 2026-12-01 10:00:00 AEDT (+11:00)
    header = tab.locator("#preview thead").inner_text()
    assert "Local (Australia/Sydney)" in header

    # Typing on changes it, still before saving.
    crons = tab.get_by_label("Crons")
    crons.fill("")
    crons.press_sequentially("30 6 * * 1")
    monday = next_fires("30 6 * * 1", SYDNEY, 1)[0]
    wait_for_preview(tab, utc_text(monday), monday.strftime("%Y-%m-%d 06:30:00"))
    listed = api.get(f"/api/v1/projects/{project}/jobs/{job}/schedules").json()["items"]
    assert listed == []  # nothing is saved by the preview

    tab.get_by_role("button", name="Save schedule").click()
    tab.get_by_role("heading", name=re.compile("Schedule nightly")).wait_for()
    saved = api.get(f"/api/v1/projects/{project}/jobs/{job}/schedules/nightly").json()
    assert saved["timeZone"] == "AUS Eastern Standard Time"
    assert saved["timeZoneIana"] == "Australia/Sydney"
    assert saved["crons"] == ["30 6 * * 1"]
    assert saved["enabled"] is True
    # The list shows it with its next fire in UTC and in local time.
    tab.get_by_role("link", name="Schedules").click()
    row = tab.get_by_role("row", name=re.compile("nightly"))
    assert utc_text(monday) in row.inner_text()
    assert monday.strftime("%Y-%m-%d 06:30:00 AE") in row.inner_text()


def test_the_job_page_lists_its_schedules_in_short_and_calls_from_code(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = make_job(api, project)
    put_schedule(api, project, job, "mornings", timeZone="W. Europe Standard Time")
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}")
    part = tab.locator("section.job-schedules")
    row = part.get_by_role("row", name=re.compile("mornings"))
    assert "0 10 * * *" in row.inner_text() and "W. Europe Standard Time" in row.inner_text()
    assert "active" in row.inner_text()
    assert part.get_by_role("link", name="Add schedule").is_visible()
    assert f"/api/v1/projects/{project}/jobs/{job}/execute" in _code(tab, "snippet-job-curl")
    row.get_by_role("link", name="mornings").click()
    tab.get_by_role("heading", name=re.compile("Schedule mornings")).wait_for()
    assert "Europe/Berlin" in tab.locator("dl.schedule-facts").inner_text()


def test_an_invalid_cron_or_zone_shows_the_apis_message_next_to_the_field(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = make_job(api, project)
    refused = api.put(
        f"/api/v1/projects/{project}/jobs/{job}/schedules/x",
        json={"crons": ["0 10 * * *", "61 * * * *"], "timeZone": "Mars/Olympus"},
    )
    assert refused.status_code == 422
    reasons = {d["field"]: d["reason"] for d in refused.json()["details"]}
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/schedules/-/new")
    tab.get_by_label("Name").fill("broken")
    crons = tab.get_by_label("Crons")
    crons.press_sequentially("0 10 * * *\n61 * * * *")
    cron_error = tab.locator("#err-crons")
    cron_error.filter(has_text=reasons["crons.1"]).wait_for()
    assert cron_error.inner_text() == "line 2: " + reasons["crons.1"]
    assert "err-crons" in (crons.get_attribute("aria-describedby") or "").split()
    assert reasons["crons.1"] in tab.locator("#preview").inner_text()

    # Saved anyway, the form comes back with what was typed and the message in place.
    tab.get_by_role("button", name="Save schedule").click()
    tab.locator("#err-crons", has_text=reasons["crons.1"]).wait_for()
    assert tab.get_by_label("Crons").input_value() == "0 10 * * *\n61 * * * *"
    assert tab.get_by_label("Name").input_value() == "broken"

    crons.fill("0 10 * * *")
    zone = tab.get_by_label("Time zone")
    zone.fill("")
    zone.press_sequentially("Mars/Olympus")
    tab.locator("#err-timeZone", has_text=reasons["timeZone"]).wait_for()
    assert tab.locator("#err-crons").inner_text() == ""
    assert api.get(f"/api/v1/projects/{project}/jobs/{job}/schedules").json()["items"] == []


def test_a_schedule_is_edited_and_disabled_and_deleted_after_a_confirmation(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = make_job(api, project)
    put_schedule(api, project, job, "daily", timeZone="Australia/Sydney")
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/schedules/daily")
    tab.get_by_role("link", name="Edit").click()
    assert tab.get_by_label("Crons").input_value() == "0 10 * * *"
    assert tab.get_by_label("Time zone").input_value() == "Australia/Sydney"
    tab.get_by_label("Crons").fill("15 8 * * *")
    tab.get_by_label("Enabled").uncheck()
    tab.get_by_label("Overlap policy").select_option("bufferOne")
    tab.get_by_label("Parameters (JSON)").fill('{"who": "Sydney"}')
    tab.get_by_role("button", name="Save schedule").click()
    tab.get_by_role("heading", name=re.compile("Schedule daily")).wait_for()
    assert tab.locator("h1 .badge").inner_text() == "disabled"
    saved = api.get(f"/api/v1/projects/{project}/jobs/{job}/schedules/daily").json()
    assert saved["crons"] == ["15 8 * * *"]
    assert saved["enabled"] is False and saved["state"] == "disabled"
    assert saved["overlapPolicy"] == "bufferOne"
    assert saved["parameters"] == {"who": "Sydney"}
    assert saved["nextFireAt"] is None

    # A parameter the job does not declare: the API's words, next to the parameters.
    tab.get_by_role("link", name="Edit").click()
    tab.get_by_label("Parameters (JSON)").fill('{"whom": 1}')
    tab.get_by_role("button", name="Save schedule").click()
    tab.locator("#err-parameters").filter(has_text="whom").wait_for()

    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/schedules/daily")
    tab.get_by_role("link", name="Delete").click()
    tab.get_by_role("heading", name="Delete schedule daily?").wait_for()
    tab.get_by_role("button", name="Delete schedule").click()
    tab.get_by_text("This job has no schedule yet.").wait_for()
    assert api.get(f"/api/v1/projects/{project}/jobs/{job}/schedules").json()["items"] == []


def test_the_fire_history_shows_a_triggered_fire_and_the_skipped_ones_with_their_reason(
    server: Server, api: httpx2.Client, project: str, tab: Any
) -> None:
    job = make_job(api, project, command="sleep 5")
    put_schedule(api, project, job, "every-minute", crons=["* * * * *"], overlapPolicy="skip")
    base = f"/api/v1/projects/{project}/jobs/{job}/schedules/every-minute"
    fired = api.post(base + "/trigger")
    assert fired.status_code == 201, fired.text
    run_id = fired.json()["execution"]["id"]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    start, end = now - dt.timedelta(minutes=25), now - dt.timedelta(minutes=1)
    backfilled = api.post(
        base + "/backfill", json={"from": start.isoformat(), "to": end.isoformat()}
    )
    assert backfilled.status_code == 201, backfilled.text
    skipped = [f for f in backfilled.json()["fires"] if f["outcome"] == "skipped"]
    assert skipped, backfilled.json()

    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/schedules/every-minute")
    history = tab.locator("table.fires tbody tr")
    assert history.count() == 20  # a page; the newest first
    trigger_row = tab.get_by_role("row", name=re.compile("trigger"))
    assert "started" in trigger_row.inner_text()
    assert trigger_row.get_by_role("link", name=run_id).get_attribute("href") == (
        f"/console/runs/{run_id}"
    )
    newest_skip = max(skipped, key=lambda f: f["fireAt"])
    when = dt.datetime.fromisoformat(newest_skip["fireAt"].replace("Z", "+00:00"))
    skip_row = tab.get_by_role("row", name=re.compile(when.strftime("%Y-%m-%d %H:%M:%S UTC")))
    assert "skipped" in skip_row.inner_text()
    assert newest_skip["reason"] in skip_row.inner_text()

    tab.get_by_role("link", name="Older fires").click()
    older = tab.locator("table.fires tbody tr")
    total = 1 + len(backfilled.json()["fires"])
    assert older.count() == total - 20
    oldest = min(backfilled.json()["fires"], key=lambda f: f["fireAt"])
    oldest_at = dt.datetime.fromisoformat(oldest["fireAt"].replace("Z", "+00:00"))
    assert oldest_at.strftime("%Y-%m-%d %H:%M:%S UTC") in older.last.inner_text()
    assert tab.get_by_role("link", name="Newest fires").is_visible()


def test_a_viewer_sees_no_add_or_edit_and_a_forced_post_gets_the_403_page(
    server: Server, api: httpx2.Client, project: str, tab: Any, context: Any
) -> None:
    job = make_job(api, project)
    put_schedule(api, project, job, "daily")
    username, password = f"viewer-{uuid.uuid4().hex[:6]}", "a-viewer-password-1"
    made = api.post(
        "/api/v1/users",
        json={
            "username": username,
            "password": password,
            "roles": [{"role": "Viewer", "project": project}],
        },
    )
    assert made.status_code == 201, made.text
    log_in(tab, server, username, password)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}")
    part = tab.locator("section.job-schedules")
    assert part.get_by_role("link", name="daily").is_visible()
    assert part.get_by_role("link", name="Add schedule").count() == 0
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/schedules")
    assert tab.get_by_role("link", name="daily").is_visible()
    assert tab.get_by_role("link", name="Add schedule").count() == 0
    tab.get_by_role("link", name="daily").click()
    tab.get_by_role("heading", name=re.compile("Schedule daily")).wait_for()
    assert tab.get_by_role("link", name="Edit").count() == 0
    assert tab.get_by_role("link", name="Delete").count() == 0
    assert tab.locator("table.preview tbody tr").count() == 10  # reading is allowed

    cookies = {c["name"]: c["value"] for c in context.cookies()}
    form = {"csrf": cookies["jobport_csrf"], "name": "mine", "crons": "* * * * *"}
    schedules = f"/console/projects/{project}/jobs/{job}/schedules"
    with httpx2.Client(base_url=server.url, cookies=cookies) as raw:
        for path in ("/-/new", "/daily/edit", "/daily/delete"):
            refused = raw.post(schedules + path, data=form)
            assert refused.status_code == 403, (path, refused.text)
            assert "Not allowed" in refused.text and "schedules:write" in refused.text
        assert raw.get(schedules + "/-/new").status_code == 403
    kept = api.get(f"/api/v1/projects/{project}/jobs/{job}/schedules").json()["items"]
    assert [s["name"] for s in kept] == ["daily"]
    assert kept[0]["crons"] == ["0 10 * * *"]


def _code(tab: Any, snippet_id: str) -> str:
    return str(tab.locator(f"#{snippet_id}").inner_text())


def test_a_jobs_snippets_run_as_shown_against_the_server(
    server: Server, api: httpx2.Client, project: str, tab: Any, context: Any, tmp_path: Path
) -> None:
    job = make_job(api, project)
    log_in(tab, server)
    tab.goto(f"{server.url}/console/projects/{project}/jobs/{job}/snippets")
    curl = _code(tab, "snippet-job-curl")
    assert f"{server.url}/api/v1/projects/{project}/jobs/{job}/execute" in curl
    assert '"who": "world"' in curl

    # The Copy button copies the code as shown.
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    tab.get_by_role("button", name="Copy").first.click()
    tab.get_by_role("button", name="Copied").wait_for()
    assert tab.evaluate("navigator.clipboard.readText()") == curl

    env = {**os.environ, "JOBPORT_KEY": ""}
    filled = curl.replace(KEY_PLACEHOLDER, server.key or "")
    ran = subprocess.run(
        ["bash", "-c", filled], capture_output=True, text=True, timeout=90, env=env, check=False
    )
    assert ran.returncode == 0, ran.stderr + ran.stdout
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded" and run["jobName"] == job
    assert run["parameters"] == {"who": "world"}

    env = {**os.environ, "JOBPORT_KEY": server.key or "", "PYTHONPATH": str(ROOT / "src")}
    for snippet in ("snippet-job-requests", "snippet-job-sdk"):
        code = _code(tab, snippet)
        ran = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=env
        )
        assert ran.returncode == 0, (snippet, ran.stderr)
        run_id, status = ran.stdout.split()[:2]
        assert status == "succeeded", ran.stdout
        assert api.get(f"/api/v1/executions/{run_id}").json()["jobName"] == job

    assert "Invoke-RestMethod -Method Post" in _code(tab, "snippet-job-powershell")
    postman = tab.get_by_role("link", name="Download the Postman collection")
    assert postman.get_attribute("href") == "/api/v1/postman.json"
    assert httpx2.get(server.url + "/api/v1/postman.json").status_code == 200
    postman_cli = _code(tab, "snippet-job-postman")
    assert postman_cli == f"jobport postman --url {server.url} -o jobport.postman_collection.json"
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    ran = subprocess.run(
        ["bash", "-c", postman_cli],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
    )
    assert ran.returncode == 0, ran.stderr
    collection = json.loads((tmp_path / "jobport.postman_collection.json").read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")


def _request_to(server: Server) -> Request:
    host = server.url.removeprefix("http://")
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/console/",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "server": ("127.0.0.1", server.port),
    }
    return Request(scope)


def test_a_keys_snippets_get_a_token_with_the_secret_and_show_a_placeholder_without_it(
    server: Server, api: httpx2.Client
) -> None:
    made = api.post("/api/v1/keys", json={"description": "snippets"})
    assert made.status_code == 201, made.text
    key = made.json()
    snippets = {s.id.rsplit("-", 1)[1]: s.text for s in key_snippets(_request_to(server), key)}
    assert key["clientSecret"] in snippets["curl"]
    ran = subprocess.run(
        ["bash", "-c", snippets["curl"]], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    me = json.loads(ran.stdout)
    assert me["id"] == key["clientId"] and me["authenticatedBy"] == "token"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for snippet in ("requests", "sdk"):
        ran = subprocess.run(
            [sys.executable, "-c", snippets[snippet]],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert ran.returncode == 0, (snippet, ran.stderr)
        assert f"'id': '{key['clientId']}'" in ran.stdout
        assert "'authenticatedBy': 'token'" in ran.stdout  # a token, not the key itself

    listed = {k["clientId"]: k for k in api.get("/api/v1/keys").json()["items"]}
    later = key_snippets(_request_to(server), listed[key["clientId"]])
    assert all(key["clientSecret"] not in s.text for s in later)
    assert all("<your secret>" in s.text for s in later if "postman" not in s.id)


@pytest.mark.parametrize("host", ["evil.example'; rm -rf ~ #", 'a"b'])
def test_a_strange_host_header_never_lands_in_a_snippet(host: str) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
    }
    texts = [s.text for s in key_snippets(Request(scope), {"clientId": "abc"})]
    assert all(host not in t for t in texts)
    assert all("<your jobport server>" in t for t in texts)
