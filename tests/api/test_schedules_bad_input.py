"""A bad schedule gets a 4xx naming the field and the reason, and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

STEP = {"name": "a", "kind": "command", "config": {"command": "echo hi"}}

BAD = [
    ("invalid cron", {"crons": ["0 9 * *"]}, "crons.0", "0 9 * *"),
    ("second cron invalid", {"crons": ["@daily", "61 * * * *"]}, "crons.1", "61 * * * *"),
    ("unknown time zone", {"crons": ["@daily"], "timeZone": "Mars/Olympus"}, "timeZone", "Mars"),
    (
        "end before start",
        {"crons": ["@daily"], "startDate": "2026-05-01", "endDate": "2026-04-01"},
        "endDate",
        "before",
    ),
    ("empty crons", {"crons": []}, "crons", "empty"),
    ("no crons nor runAt", {}, "crons", "runAt"),
    ("both crons and runAt", {"crons": ["@daily"], "runAt": "2030-01-01T00:00"}, "crons", "both"),
    (
        "unknown misfire policy",
        {"crons": ["@daily"], "misfirePolicy": "later"},
        "misfirePolicy",
        "'skip', 'runOnce' or 'runAll'",
    ),
    (
        "unknown overlap policy",
        {"crons": ["@daily"], "overlapPolicy": "queue"},
        "overlapPolicy",
        "'allow', 'skip', 'bufferOne' or 'cancelPrevious'",
    ),
    (
        "unknown dst gap policy",
        {"crons": ["@daily"], "dstPolicy": {"gap": "x"}},
        "dstPolicy.gap",
        "'shift' or 'skip'",
    ),
    (
        "catch-up window past ten years",
        {"crons": ["@daily"], "catchupWindow": 1e12},
        "catchupWindow",
        "less than or equal to 316224000",
    ),
    ("unknown field", {"crons": ["@daily"], "colour": "red"}, "colour", "not permitted"),
    ("runAt with an offset", {"runAt": "2030-01-01T00:00Z"}, "runAt", "offset"),
    (
        "runAt in the past",  # it would be stored and never fire
        {"runAt": "2020-11-01T09:00", "timeZone": "Europe/Berlin"},
        "runAt",
        "runAt 2020-11-01T09:00 (Europe/Berlin) is in the past; it is ",
    ),
    ("body name not the path name", {"name": "other", "crons": ["@daily"]}, "name", "path"),
    (
        "undeclared parameter",
        {"crons": ["@daily"], "parameters": {"x": 1}},
        "parameters.x",
        "unknown parameter",
    ),
]


@pytest.mark.parametrize(("case", "body", "field", "mentions"), BAD, ids=[c[0] for c in BAD])
def test_bad_schedules_are_refused_and_not_stored(
    api: httpx2.Client, project: str, case: str, body: dict[str, Any], field: str, mentions: str
) -> None:
    job = f"/api/v1/projects/{project}/jobs/j"
    api.post(f"/api/v1/projects/{project}/jobs", json={"name": "j", "steps": [STEP]})
    response = api.put(f"{job}/schedules/s", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid_schedule"
    assert field in [d["field"] for d in error["details"]], error
    assert mentions in error["message"]
    assert api.get(f"{job}/schedules").json()["items"] == []


def test_a_schedule_of_an_unknown_job_is_a_404(api: httpx2.Client, project: str) -> None:
    response = api.put(
        f"/api/v1/projects/{project}/jobs/ghost/schedules/s", json={"crons": ["@daily"]}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


def test_a_body_that_is_not_an_object_is_refused(api: httpx2.Client, project: str) -> None:
    api.post(f"/api/v1/projects/{project}/jobs", json={"name": "j", "steps": [STEP]})
    response = api.put(f"/api/v1/projects/{project}/jobs/j/schedules/s", json=["@daily"])
    assert response.status_code == 422
    assert api.get(f"/api/v1/projects/{project}/jobs/j/schedules").json()["items"] == []


def test_a_backfill_range_that_ends_before_it_starts_is_refused(
    api: httpx2.Client, project: str
) -> None:
    job = f"/api/v1/projects/{project}/jobs/j"
    api.post(f"/api/v1/projects/{project}/jobs", json={"name": "j", "steps": [STEP]})
    api.put(f"{job}/schedules/s", json={"crons": ["@hourly"]})
    backwards = {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    response = api.post(f"{job}/schedules/s/backfill", json=backwards)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "to"
    future = {"from": "2026-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"}
    assert api.post(f"{job}/schedules/s/backfill", json=future).status_code == 422
    assert api.get(f"{job}/schedules/s/fires").json()["items"] == []
