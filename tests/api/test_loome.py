"""Loome's Postman flow, as its documentation writes it, against a real server: a token with
`scope=webApi`, Run Job, Check Job Status, Get Schedules, Add or Update Schedule (its example
body verbatim) and Delete Schedule, each by the job's id alone; and every way it can fail."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest

from conftest import Server, create_postgres_database, drop_postgres_database, wait_for

# vendor-docs/000: "Add or Update Schedule", the body as the documentation shows it.
LOOME_SCHEDULE = (
    '{ "name": "My Schedule", "timezone": "AUS Eastern Standard Time", '
    '"startDate": "2023-09-04", "endDate": null, "enabled": true, "crons": [ "0 10 * * *" ] }'
)
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on SQLite, then one on PostgreSQL (skipped when there is none)."""
    workdir = tmp_path_factory.mktemp(f"loome-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'jobport.db'}"
    else:
        url = create_postgres_database()
    srv = Server(url, workdir).start()
    yield srv
    srv.stop()
    if request.param == "postgresql":
        drop_postgres_database(url)


def _job(admin: httpx2.Client, project: str, command: str = "echo hello from loome") -> str:
    """A job of one command step in `project`; returns its id."""
    body = {
        "name": f"load-{uuid.uuid4().hex[:6]}",
        "steps": [{"name": "load", "kind": "command", "config": {"command": command}}],
    }
    response = admin.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _key(admin: httpx2.Client, roles: list[dict[str, Any]]) -> dict[str, Any]:
    """A new API key with these roles: its clientId, clientSecret and key."""
    response = admin.post("/api/v1/keys", json={"description": "loome", "roles": roles})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _token(server: Server, key: dict[str, Any], scope: str = "webApi") -> httpx2.Response:
    """Loome's token request: a form POST to {IdentityUrl}/connect/token."""
    form = {
        "grant_type": "client_credentials",
        "client_id": key["clientId"],
        "client_secret": key["clientSecret"],
        "scope": scope,
    }
    return httpx2.post(f"{server.url}/connect/token", data=form, timeout=30)


def _bearer(server: Server, token: str) -> httpx2.Client:
    return server.client(anonymous=True, headers={"Authorization": f"Bearer {token}"})


def _next_ten_in_sydney(after: dt.datetime) -> dt.datetime:
    sydney = ZoneInfo("Australia/Sydney")
    local = after.astimezone(sydney)
    candidate = local.replace(hour=10, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0)
        candidate = candidate.replace(microsecond=0, tzinfo=sydney)
    return candidate.astimezone(dt.UTC)


def test_the_documented_postman_flow_works_by_job_id(store_server: Server) -> None:
    server = store_server
    with server.client() as admin:
        project = f"loome-{uuid.uuid4().hex[:6]}"
        assert admin.post("/api/v1/projects", json={"name": project}).status_code == 201
        job_id = _job(admin, project)
        key = _key(admin, [{"role": "Operator", "project": project}])

    issued = _token(server, key)
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    # webApi: the key's own rights, here the Operator role's.
    assert {"jobs:execute", "schedules:write"} <= set(token["scope"].split())

    with _bearer(server, token["access_token"]) as loome:
        # Check Job Status before any run: lastExecution is an empty object.
        status = loome.get(f"/api/v1/jobs/{job_id}")
        assert status.status_code == 200, status.text
        assert status.json()["id"] == job_id and status.json()["lastExecution"] == {}

        # Run Job: returns at once, with the run it scheduled.
        run = loome.post(f"/api/v1/jobs/{job_id}/execute")
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]

        def finished() -> dict[str, Any] | None:
            last = loome.get(f"/api/v1/jobs/{job_id}").json()["lastExecution"]
            return last if last.get("status") in {"succeeded", "failed"} else None

        last = wait_for(finished, timeout=30)
        assert last["id"] == run_id and last["status"] == "succeeded"

        # Get Schedules: none yet.
        listed = loome.get(f"/api/v1/jobs/{job_id}/schedules")
        assert listed.status_code == 200 and listed.json()["items"] == []

        # Add or Update Schedule, with the documented body as written.
        before = dt.datetime.now(dt.UTC)
        added = loome.post(f"/api/v1/jobs/{job_id}/schedules", content=LOOME_SCHEDULE, headers=JSON)
        assert added.status_code == 201, added.text
        schedule = added.json()
        assert schedule["name"] == "My Schedule" and schedule["jobId"] == job_id
        assert schedule["timeZone"] == "AUS Eastern Standard Time"
        assert schedule["timeZoneIana"] == "Australia/Sydney"
        assert schedule["crons"] == ["0 10 * * *"] and schedule["state"] == "active"
        next_fire = dt.datetime.fromisoformat(schedule["nextFireAt"].replace("Z", "+00:00"))
        assert next_fire == _next_ten_in_sydney(before)
        assert added.headers["location"].endswith("/schedules/My%20Schedule")

        # The same name again updates it: 200, the same schedule.
        changed = json.loads(LOOME_SCHEDULE) | {"crons": ["30 7 * * 1-5"]}
        updated = loome.post(f"/api/v1/jobs/{job_id}/schedules", json=changed)
        assert updated.status_code == 200, updated.text
        assert updated.json()["id"] == schedule["id"]
        items = loome.get(f"/api/v1/jobs/{job_id}/schedules").json()["items"]
        assert [(s["name"], s["crons"]) for s in items] == [("My Schedule", ["30 7 * * 1-5"])]

        # Delete Schedule, by name.
        deleted = loome.delete(f"/api/v1/jobs/{job_id}/schedules/My Schedule")
        assert deleted.status_code == 204, deleted.text
        assert loome.get(f"/api/v1/jobs/{job_id}/schedules").json()["items"] == []

    # The run is the one every other face sees.
    with server.client() as admin:
        native = admin.get(f"/api/v1/projects/{project}/jobs/{job_id}").json()
        assert native["lastExecution"]["id"] == run_id
        execution = admin.get(f"/api/v1/executions/{run_id}").json()
        assert execution["status"] == "succeeded" and execution["principal"].endswith(
            key["clientId"]
        )


def test_every_job_route_answers_by_id_as_in_its_project(api: httpx2.Client, project: str) -> None:
    job_id = _job(api, project)
    body = {"crons": ["0 3 * * *"], "timezone": "W. Europe Standard Time"}
    put = api.put(f"/api/v1/jobs/{job_id}/schedules/nightly", json=body)
    assert put.status_code == 201, put.text
    by_project = f"/api/v1/projects/{project}/jobs/{job_id}"
    for tail in ["", "/schedules", "/schedules/nightly", "/schedules/nightly/preview"]:
        mine, theirs = api.get(f"/api/v1/jobs/{job_id}{tail}"), api.get(by_project + tail)
        assert mine.status_code == 200, (tail, mine.text)
        assert mine.json() == theirs.json(), tail
    assert api.get(f"/api/v1/jobs/{job_id}/schedules/nightly").json()["timeZoneIana"] == (
        "Europe/Berlin"
    )
    trigger = api.post(f"/api/v1/jobs/{job_id}/schedules/nightly/trigger")
    assert trigger.status_code == 201, trigger.text
    fires = api.get(f"/api/v1/jobs/{job_id}/schedules/nightly/fires").json()["items"]
    assert [f["kind"] for f in fires] == ["trigger"]
    patched = api.patch(f"/api/v1/jobs/{job_id}", json={"description": "by id"})
    assert patched.status_code == 200 and patched.json()["description"] == "by id"
    wait_for(
        lambda: (
            api.get(f"/api/v1/jobs/{job_id}").json()["lastExecution"].get("status") == "succeeded"
        )
    )
    assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    assert api.get(by_project).status_code == 404


def test_add_or_update_answers_in_the_project_too(api: httpx2.Client, project: str) -> None:
    job_id = _job(api, project)
    url = f"/api/v1/projects/{project}/jobs/{job_id}/schedules"
    added = api.post(url, content=LOOME_SCHEDULE, headers=JSON)
    assert added.status_code == 201, added.text
    stored = api.get(f"{url}/My Schedule").json()
    assert stored["timeZone"] == "AUS Eastern Standard Time" and "timezone" not in stored


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"timezone": "Mars Standard Time"}, "timeZone", "unknown time zone"),
        ({"timeZone": "UTC"}, "timeZone", "give one of them"),
        ({"name": None}, "name", "required"),
        ({"name": "no/slash"}, "name", "invalid name"),
        ({"crons": []}, "crons", "crons is empty"),
        ({"crons": ["0 10 * *"]}, "crons.0", ""),
        ({"startDate": "2023-09-04T00:00:00+10:00"}, "startDate", "UTC offset"),
        ({"endDate": "2023-09-01"}, "endDate", "before startDate"),
        ({"enabled": "yes"}, "enabled", ""),
        ({"colour": "blue"}, "colour", ""),
    ],
)
def test_a_bad_schedule_is_a_422_naming_its_field(
    api: httpx2.Client, project: str, change: dict[str, Any], field: str, words: str
) -> None:
    job_id = _job(api, project)
    body = json.loads(LOOME_SCHEDULE) | change
    response = api.post(f"/api/v1/jobs/{job_id}/schedules", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert set(error) == {"error", "message", "details"}
    assert error["error"] == "invalid_schedule"
    assert field in [d["field"] for d in error["details"]], error
    assert words in error["message"] or any(words in d["reason"] for d in error["details"])
    assert api.get(f"/api/v1/jobs/{job_id}/schedules").json()["items"] == []


def test_a_body_that_is_no_object_is_refused(api: httpx2.Client, project: str) -> None:
    job_id = _job(api, project)
    for body in ([LOOME_SCHEDULE], "My Schedule", 3):
        response = api.post(f"/api/v1/jobs/{job_id}/schedules", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == "body"


def test_an_unknown_job_id_is_a_404(api: httpx2.Client, project: str) -> None:
    _job(api, project)
    for method, tail, body in [
        ("GET", "", None),
        ("POST", "/execute", None),
        ("GET", "/schedules", None),
        ("POST", "/schedules", json.loads(LOOME_SCHEDULE)),
        ("DELETE", "/schedules/My Schedule", None),
    ]:
        for job_id in (str(uuid.uuid4()), "hello"):  # an id nobody has; a job's name
            response = api.request(method, f"/api/v1/jobs/{job_id}{tail}", json=body)
            assert response.status_code == 404, (method, tail, response.text)
            assert response.json()["error"] == "job_not_found"


def test_an_unknown_schedule_is_a_404(api: httpx2.Client, project: str) -> None:
    job_id = _job(api, project)
    response = api.delete(f"/api/v1/jobs/{job_id}/schedules/My Schedule")
    assert response.status_code == 404 and response.json()["error"] == "schedule_not_found"


def test_a_token_of_a_removed_key_is_refused(server: Server, api: httpx2.Client) -> None:
    job_id = _job(api, api.post("/api/v1/projects", json={"name": _name()}).json()["name"])
    key = _key(api, [{"role": "Operator", "project": None}])
    token = _token(server, key).json()["access_token"]
    with _bearer(server, token) as loome:
        assert loome.get(f"/api/v1/jobs/{job_id}").status_code == 200
        assert api.delete(f"/api/v1/keys/{key['clientId']}").status_code == 204
        refused = loome.post(f"/api/v1/jobs/{job_id}/execute")
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_credentials"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    # The holder of the secret learns why at the token endpoint.
    again = _token(server, key)
    assert again.status_code == 401 and again.json()["reason"] == "key_revoked"


def test_a_wrong_secret_gets_no_token(server: Server, api: httpx2.Client) -> None:
    key = _key(api, [{"role": "Operator", "project": None}])
    response = _token(server, {**key, "clientSecret": "not-the-secret"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_key_lacking_the_scope_is_a_403(server: Server, api: httpx2.Client) -> None:
    project = api.post("/api/v1/projects", json={"name": _name()}).json()["name"]
    other = api.post("/api/v1/projects", json={"name": _name()}).json()["name"]
    job_id = _job(api, project)
    viewer = _token(server, _key(api, [{"role": "Viewer", "project": project}])).json()
    elsewhere = _token(server, _key(api, [{"role": "Operator", "project": other}])).json()
    nothing = _token(server, _key(api, [])).json()
    schedule = json.loads(LOOME_SCHEDULE)
    with _bearer(server, viewer["access_token"]) as loome:
        assert loome.get(f"/api/v1/jobs/{job_id}").status_code == 200  # it may look
        for response in (
            loome.post(f"/api/v1/jobs/{job_id}/execute"),
            loome.post(f"/api/v1/jobs/{job_id}/schedules", json=schedule),
            loome.delete(f"/api/v1/jobs/{job_id}/schedules/My Schedule"),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "insufficient_scope"
    with _bearer(server, elsewhere["access_token"]) as loome:
        # Rights only in another project: the job is answered as one that does not exist,
        # word for word, so its id tells neither that it exists nor which project holds it.
        for method, tail in [("GET", ""), ("POST", "/execute"), ("GET", "/schedules")]:
            seen = loome.request(method, f"/api/v1/jobs/{job_id}{tail}")
            unknown = loome.request(method, f"/api/v1/jobs/{uuid.uuid4()}{tail}")
            assert seen.status_code == 404, seen.text
            assert seen.json()["error"] == "job_not_found"
            assert seen.json()["message"] == unknown.json()["message"].replace(
                unknown.url.path.split("/")[4], job_id
            )
            assert project not in seen.text
    with _bearer(server, nothing["access_token"]) as loome:
        # No right anywhere: refused before the lookup, so an id that exists and one that
        # does not get the same answer.
        for some_id in (job_id, str(uuid.uuid4())):
            response = loome.post(f"/api/v1/jobs/{some_id}/execute")
            assert response.status_code == 403 and response.json()["error"] == (
                "insufficient_scope"
            )
    runs = api.get(f"/api/v1/projects/{project}/executions").json()["items"]
    assert runs == []


def test_webapi_with_other_scopes_still_checks_them(server: Server, api: httpx2.Client) -> None:
    key = _key(api, [{"role": "Viewer", "project": None}])
    own = _token(server, key, "webApi").json()
    assert "jobs:read" in own["scope"].split() and "jobs:execute" not in own["scope"].split()
    refused = _token(server, key, "webApi jobs:execute")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    narrowed = _token(server, key, "jobs:read")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "jobs:read"
    garbage = _token(server, key, "webApi no-such-scope")
    assert garbage.status_code == 400 and garbage.json()["error"] == "invalid_scope"


def test_a_run_by_id_is_audited_in_its_project(api: httpx2.Client, project: str) -> None:
    job_id = _job(api, project)
    assert api.post(f"/api/v1/jobs/{job_id}/execute").status_code == 202
    query = {"action": "execute_job_by_job_id", "target": job_id}
    # The trail is written once the answer is sent: it may land a moment after it.
    ours = wait_for(lambda: api.get("/api/v1/audit", params=query).json()["items"])
    assert ours[0]["target"] == f"POST /api/v1/jobs/{job_id}/execute", ours
    project_id = api.get(f"/api/v1/projects/{project}").json()["id"]
    assert ours[0]["projectId"] == project_id


def _name() -> str:
    return f"loome-{uuid.uuid4().hex[:8]}"


def test_run_job_takes_an_empty_body_whatever_its_content_type(
    api: httpx2.Client, project: str
) -> None:
    # Code that Postman generates sends the request as the collection holds it: no body,
    # sometimes still with a JSON content type.
    job_id = _job(api, project)
    for headers in ({}, JSON, {"Content-Type": "application/x-www-form-urlencoded"}):
        response = api.post(f"/api/v1/jobs/{job_id}/execute", content=b"", headers=headers)
        assert response.status_code == 202, (headers, response.text)
