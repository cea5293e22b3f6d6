"""Schedules over HTTP: define, read, preview, history, run now, backfill, and the server fires."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx2
import pytest

from conftest import wait_for

STEP = {"name": "a", "kind": "command", "config": {"command": "echo hi"}}


@pytest.fixture
def job(api: httpx2.Client, project: str) -> str:
    body = {"name": "nightly", "parameters": {"day": "today"}, "steps": [STEP]}
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return f"/api/v1/projects/{project}/jobs/nightly"


def test_put_creates_then_updates_the_same_schedule(api: httpx2.Client, job: str) -> None:
    body = {"crons": ["30 2 * * *"], "timeZone": "Australia/Sydney", "parameters": {"day": "x"}}
    created = api.put(f"{job}/schedules/nightly-run", json=body)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["name"] == "nightly-run"
    assert (schedule["timeZone"], schedule["timeZoneIana"]) == (
        "Australia/Sydney",
        "Australia/Sydney",
    )
    assert schedule["state"] == "active"
    assert schedule["nextFireAt"].endswith("Z")
    assert schedule["lastFireAt"] is None
    assert (schedule["misfirePolicy"], schedule["overlapPolicy"]) == ("runOnce", "skip")

    updated = api.put(f"{job}/schedules/nightly-run", json={**body, "enabled": False})
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == schedule["id"]
    assert (updated.json()["state"], updated.json()["nextFireAt"]) == ("disabled", None)

    assert api.get(f"{job}/schedules/nightly-run").json() == updated.json()
    assert [s["id"] for s in api.get(f"{job}/schedules").json()["items"]] == [schedule["id"]]


def test_delete_removes_the_schedule(api: httpx2.Client, job: str) -> None:
    api.put(f"{job}/schedules/s", json={"crons": ["@daily"]})
    assert api.delete(f"{job}/schedules/s").status_code == 204
    missing = api.get(f"{job}/schedules/s")
    assert missing.status_code == 404
    assert missing.json()["error"] == "schedule_not_found"
    assert api.delete(f"{job}/schedules/s").status_code == 404


def test_windows_zone_names_are_understood_and_echoed(api: httpx2.Client, job: str) -> None:
    body = {"crons": ["0 9 * * MON-FRI"], "timeZone": "AUS Eastern Standard Time"}
    schedule = api.put(f"{job}/schedules/s", json=body).json()
    assert schedule["timeZone"] == "AUS Eastern Standard Time"
    assert schedule["timeZoneIana"] == "Australia/Sydney"
    fires = api.get(f"{job}/schedules/s/preview", params={"count": 1}).json()["fires"]
    assert fires[0]["local"][11:19] == "09:00:00"


def test_preview_lists_fire_times_across_a_dst_change(api: httpx2.Client, job: str) -> None:
    api.put(f"{job}/schedules/s", json={"crons": ["30 2 * * *"], "timeZone": "Australia/Sydney"})
    response = api.get(
        f"{job}/schedules/s/preview", params={"count": 5, "from": "2026-10-01T00:00:00Z"}
    )
    assert response.status_code == 200, response.text
    fires = response.json()["fires"]
    assert fires[0] == {
        "utc": "2026-10-01T16:30:00.000Z",
        "local": "2026-10-02T02:30:00+10:00",
        "dst": None,
    }
    assert fires[2] == {
        "utc": "2026-10-03T16:00:00.000Z",
        "local": "2026-10-04T03:00:00+11:00",
        "dst": "shifted",
    }
    assert fires[3]["local"] == "2026-10-05T02:30:00+11:00"
    too_many = api.get(f"{job}/schedules/s/preview", params={"count": 1001})
    assert too_many.status_code == 422
    assert too_many.json()["details"][0]["field"] == "count"


def test_trigger_runs_now_and_is_recorded_as_a_fire(api: httpx2.Client, job: str) -> None:
    api.put(f"{job}/schedules/s", json={"crons": ["@yearly"], "parameters": {"day": "mon"}})
    response = api.post(f"{job}/schedules/s/trigger")
    assert response.status_code == 201, response.text
    fire, execution = response.json()["fire"], response.json()["execution"]
    assert (fire["kind"], fire["outcome"], fire["executionId"]) == (
        "trigger",
        "started",
        execution["id"],
    )
    assert execution["trigger"] == "schedule"
    assert execution["parameters"] == {"day": "mon"}
    assert execution["schedule"] == {"name": "s", "fireAt": fire["fireAt"]}
    assert execution["principal"].startswith("apiKey:")  # who pressed "run now"

    done = wait_for(
        lambda: (
            (e := api.get(f"/api/v1/executions/{execution['id']}").json())["status"]
            in {"succeeded", "failed"}
            and e
        )
    )
    assert done["status"] == "succeeded"
    assert done["schedule"] == {"name": "s", "fireAt": fire["fireAt"]}
    history = api.get(f"{job}/schedules/s/fires").json()
    assert [f["id"] for f in history["items"]] == [fire["id"]]


def test_backfill_fires_each_missing_time_once(api: httpx2.Client, job: str) -> None:
    body = {"crons": ["0 * * * *"], "overlapPolicy": "allow"}
    api.put(f"{job}/schedules/s", json=body)
    window = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T03:00:00Z"}
    first = api.post(f"{job}/schedules/s/backfill", json=window)
    assert first.status_code == 201, first.text
    fires = first.json()["fires"]
    assert [f["fireAt"] for f in fires] == [f"2026-01-05T0{h}:00:00.000Z" for h in range(4)]
    assert {f["outcome"] for f in fires} == {"started"}
    assert {f["kind"] for f in fires} == {"backfill"}

    wider = {"from": "2026-01-05T02:00:00Z", "to": "2026-01-05T05:00:00Z"}
    again = api.post(f"{job}/schedules/s/backfill", json=wider).json()["fires"]
    assert [f["fireAt"][11:13] for f in again] == ["04", "05"]  # 02 and 03 fired already

    runs = api.get(
        f"/api/v1/projects/{job.split('/')[4]}/executions", params={"job": "nightly"}
    ).json()
    assert len(runs["items"]) == 6
    assert all(r["principal"].startswith("apiKey:") for r in runs["items"])  # who backfilled


def test_backfill_with_the_skip_policy_runs_one_and_skips_the_overlaps(
    api: httpx2.Client, job: str
) -> None:
    api.put(f"{job}/schedules/s", json={"crons": ["0 * * * *"]})  # overlapPolicy skip
    window = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T02:00:00Z"}
    fires = api.post(f"{job}/schedules/s/backfill", json=window).json()["fires"]
    assert [(f["outcome"], f["reason"]) for f in fires] == [
        ("started", None),
        ("skipped", "overlap"),
        ("skipped", "overlap"),
    ]


def test_backfill_of_too_many_fires_is_refused_and_records_nothing(
    api: httpx2.Client, job: str
) -> None:
    api.put(f"{job}/schedules/s", json={"crons": ["* * * * *"]})
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}  # 1441 fires
    response = api.post(f"{job}/schedules/s/backfill", json=window)
    assert response.status_code == 422
    assert response.json()["error"] == "range_too_large"
    assert response.json()["details"][0]["field"] == "to"
    assert api.get(f"{job}/schedules/s/fires").json()["items"] == []


def test_fire_history_is_newest_first_and_paged(api: httpx2.Client, job: str) -> None:
    api.put(f"{job}/schedules/s", json={"crons": ["0 * * * *"], "overlapPolicy": "allow"})
    window = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T04:00:00Z"}
    api.post(f"{job}/schedules/s/backfill", json=window)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{job}/schedules/s/fires", params=params).json()
        seen += [f["fireAt"][11:13] for f in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == ["04", "03", "02", "01", "00"]


def test_the_job_lists_its_schedules_and_deleting_it_deletes_them(
    api: httpx2.Client, job: str
) -> None:
    api.put(f"{job}/schedules/a", json={"crons": ["@daily"]})
    api.put(f"{job}/schedules/b", json={"runAt": "2099-01-01T00:00", "timeZone": "Europe/Paris"})
    listed = api.get(job).json()["schedules"]
    assert [(s["name"], s["state"]) for s in listed] == [("a", "active"), ("b", "active")]
    assert listed[1]["nextFireAt"] == "2098-12-31T23:00:00.000Z"

    assert api.delete(job).status_code == 204
    assert api.get(f"{job}/schedules").status_code == 404


def test_the_server_fires_a_one_time_schedule_by_itself(api: httpx2.Client, job: str) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    body = {"runAt": soon.strftime("%Y-%m-%dT%H:%M:%S"), "overlapPolicy": "allow"}
    assert api.put(f"{job}/schedules/once", json=body).status_code == 201
    fired = wait_for(
        lambda: api.get(f"{job}/schedules/once/fires").json()["items"], timeout=20, interval=0.2
    )
    assert fired[0]["outcome"] == "started"
    run = wait_for(
        lambda: (
            (e := api.get(f"/api/v1/executions/{fired[0]['executionId']}").json())["status"]
            == "succeeded"
            and e
        ),
        timeout=20,
    )
    assert run["schedule"]["name"] == "once"
    assert api.get(f"{job}/schedules/once").json()["state"] == "inactive"


def test_the_sdk_clients_manage_schedules(server: Any, job: str) -> None:
    import asyncio

    from jobport.client import AsyncClient, Client, ValidationFailed

    project = job.split("/")[4]
    with Client(server.url, key=server.key) as jp:
        created = jp.put_schedule(project, "nightly", "sdk", {"crons": ["0 3 * * *"]})
        assert created["state"] == "active"
        assert [s["name"] for s in jp.list_schedules(project, "nightly")] == ["sdk"]
        fires = jp.preview_schedule(
            project, "nightly", "sdk", count=3, start="2026-01-01T00:00:00Z"
        )
        assert [f["utc"] for f in fires] == [f"2026-01-0{d}T03:00:00.000Z" for d in (1, 2, 3)]
        ran = jp.trigger_schedule(project, "nightly", "sdk")
        page = jp.schedule_fires(project, "nightly", "sdk")
        assert [f["executionId"] for f in page["items"]] == [ran["execution"]["id"]]
        with pytest.raises(ValidationFailed) as bad:
            jp.put_schedule(project, "nightly", "sdk", {"crons": ["nope"]})
        assert bad.value.code == "invalid_schedule"

    async def use_async() -> None:
        async with AsyncClient(server.url, key=server.key) as jp:
            got = await jp.get_schedule(project, "nightly", "sdk")
            assert got["id"] == created["id"]
            backfilled = await jp.backfill_schedule(
                project, "nightly", "sdk", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
            )
            assert [f["fireAt"] for f in backfilled] == ["2026-01-01T03:00:00.000Z"]
            await jp.delete_schedule(project, "nightly", "sdk")
            assert await jp.list_schedules(project, "nightly") == []

    asyncio.run(use_async())
