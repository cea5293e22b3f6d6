"""InfoLink's job API over HTTP against the real server: the documented curl examples as
written, async and sync runs with InfoLink's result schema, jobId replay, the status and
stop words, every way in (apiKey in the body or the query, bearer tokens of each grant,
refresh) and every error in InfoLink's shape; on SQLite, and once on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet

from conftest import (
    Server,
    admin_key,
    create_postgres_database,
    drop_postgres_database,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

EXECUTE = "/api/v1/executeJob.jsp"
STATUS = "/api/v1/getJobStatus.jsp"
STOP = "/api/v1/stopJob.jsp"
TOKEN = "/api/v1/oauth2/token"

# vendor-docs 003, "Call example: how to execute a scenario", verbatim.
DOCUMENTED_EXECUTE = (
    'curl -H "Content-Type: application/json" -X POST -d \'{"apiKey":"<your API key>",'
    '"appId":"7","operation":{"opName": "RunScenario", "opParams": {"scenario": "Main", '
    '"parameters": {}}}}\' "<path_to_infolink>/api/v1/executeJob.jsp"'
)
# InfoLink's getJobStatus and stopJob pages, "Call example", verbatim but for the path of
# stopJob, which that page misspells as /api/v1/stop.jsp.
DOCUMENTED_STATUS = (
    'curl -i -H "Accept: application/json" -H "Content-Type: application/json" -X GET '
    '"<path_to_infolink>/api/v1/getJobStatus.jsp?apiKey=<your API key>&appId=7'
    '&jobId=<jobId returned by executeJob>"'
)
DOCUMENTED_STOP = (
    'curl -i -H "Accept: application/json" -H "Content-Type: application/json" -X GET '
    '"<path_to_infolink>/api/v1/stopJob.jsp?apiKey=<your API key>&appId=7'
    '&jobId=<jobId returned by executeJob>"'
)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (SQLite store) that can keep connections (an encryption
    key): it stands in for tests/conftest.py's `server`, so `api` and `project` use it."""
    workdir = tmp_path_factory.mktemp("infolink")
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        encryption_key=Fernet.generate_key().decode(),
        max_wait_seconds=60,
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def anon(server: Server) -> Iterator[httpx2.Client]:
    """A client with no credentials: InfoLink's callers send theirs in each request."""
    with server.client(anonymous=True) as client:
        yield client


def make_job(api: httpx2.Client, project: str, steps: list[dict[str, Any]], **fields: Any) -> str:
    name = fields.pop("name", _name("job"))
    response = api.post(
        f"/api/v1/projects/{project}/jobs", json={"name": name, "steps": steps, **fields}
    )
    assert response.status_code == 201, response.text
    return name


def command(cmd: str, name: str = "run") -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": cmd}}


def records_step(n: int = 3) -> dict[str, Any]:
    return {
        "name": "rows",
        "kind": "python",
        "config": {"callable": "fixtures_steps:records", "kwargs": {"n": n}},
    }


def companies_job(server: Server, api: httpx2.Client, project: str, tmp: Path) -> str:
    """InfoLink's own example data: a sql step reading `companies` (id, company_name)."""
    path = tmp / f"{_name('companies')}.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE companies (id TEXT, company_name TEXT, founded INTEGER)")
        db.executemany(
            "INSERT INTO companies VALUES (?, ?, ?)",
            [("1", "IBM", 1911), ("2", "Microsoft", 1975)],
        )
    connection = {"name": _name("crm"), "url": f"sqlite:///{path}"}
    response = api.post(f"/api/v1/projects/{project}/connections", json=connection)
    assert response.status_code == 201, response.text
    step = {
        "name": "companies",
        "kind": "sql",
        "config": {
            "connection": connection["name"],
            "query": "select id, company_name, founded from companies order by id",
        },
    }
    return make_job(api, project, [step])


def run_scenario(
    client: httpx2.Client, key: str | None, app: str, scenario: str, **fields: Any
) -> httpx2.Response:
    body: dict[str, Any] = {
        "appId": app,
        "operation": {
            "opName": "RunScenario",
            "opParams": {"scenario": scenario, "parameters": fields.pop("parameters", {})},
        },
        **fields,
    }
    if key is not None:
        body["apiKey"] = key
    return client.post(EXECUTE, json=body)


def status_of(client: httpx2.Client, key: str, app: str, job_id: str) -> dict[str, Any]:
    response = client.get(STATUS, params={"apiKey": key, "appId": app, "jobId": job_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "success", body
    return body["result"]  # type: ignore[no-any-return]


def settled(client: httpx2.Client, key: str, app: str, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        result = status_of(client, key, app, job_id)
        return result if result["status"] not in {"running", "stopping"} else None

    return wait_for(done, timeout=30, interval=0.1)  # type: ignore[no-any-return]


def assert_error(response: httpx2.Response, status: int, code: str | None = None) -> str:
    """An error in InfoLink's shape, with the status; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error", body
    assert set(body) == {"status", "result"}, body
    message = body["result"]["message"]
    assert isinstance(message, str) and message, body
    assert "Traceback" not in response.text
    if code is not None:
        assert body["result"]["code"] == code, body
    return str(message)


def curl(command: str) -> tuple[int, dict[str, Any]]:
    """Run a curl command line as a shell would split it; (HTTP status, JSON body)."""
    args = shlex.split(command)
    assert args[0] == "curl"
    out = subprocess.run(
        [*args, "-s", "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    text, _, status = out.stdout.rpartition("\n")
    body = text.split("\n\n")[-1]  # after the headers that `-i` prints
    return int(status), json.loads(body)


# --- the documented examples ------------------------------------------------------------------


def test_the_documented_curl_examples_run_stop_and_poll_a_scenario(
    server: Server, api: httpx2.Client
) -> None:
    # The examples name app 7 and scenario Main: a project called 7 with a job called Main.
    assert api.post("/api/v1/projects", json={"name": "7"}).status_code == 201
    make_job(api, "7", [command("sleep 30", name="main")], name="Main")
    key = server.key or ""

    def filled(example: str, job_id: str = "") -> str:
        return (
            example.replace("<your API key>", key)
            .replace("<path_to_infolink>", server.url)
            .replace("<jobId returned by executeJob>", job_id)
        )

    status, body = curl(filled(DOCUMENTED_EXECUTE))
    assert status == 200, body
    assert body["status"] == "success" and set(body["result"]) == {"jobId"}, body
    job_id = body["result"]["jobId"]
    # The same run through the native API: an InfoLink job is an execution.
    native = api.get(f"/api/v1/executions/{job_id}").json()
    assert native["jobName"] == "Main" and native["trigger"] == "api"

    wait_for(lambda: api.get(f"/api/v1/executions/{job_id}").json()["status"] == "running")
    status, body = curl(filled(DOCUMENTED_STATUS, job_id))
    assert (status, body) == (
        200,
        {"status": "success", "result": {"status": "running", "jobId": job_id}},
    )

    status, body = curl(filled(DOCUMENTED_STOP, job_id))
    assert (status, body) == (200, {"status": "success", "result": {"status": "stop started"}})
    wait_for(lambda: curl(filled(DOCUMENTED_STATUS, job_id))[1]["result"]["status"] == "stopped")
    status, body = curl(filled(DOCUMENTED_STOP, job_id))
    assert body == {"status": "success", "result": {"status": "already completed"}}


# --- running: async, sync, results and their schema ---------------------------------------


def test_async_run_then_status_completed_with_records_and_typed_schema(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str, tmp_path: Path
) -> None:
    key = server.key or ""
    job = companies_job(server, api, project, tmp_path)
    started = run_scenario(anon, key, project, job)
    assert started.status_code == 200, started.text
    job_id = started.json()["result"]["jobId"]
    result = settled(anon, key, project, job_id)
    assert result["status"] == "completed", result
    [named] = result["results"]
    assert named["name"] == "companies"
    assert named["result"]["records"] == [
        {"id": "1", "company_name": "IBM", "founded": 1911},
        {"id": "2", "company_name": "Microsoft", "founded": 1975},
    ]
    text = {"name": "text", "typeStr": "text"}
    assert named["result"]["schema"] == [
        {
            "name": "id",
            "updateable": False,
            "type": {"name": "TEXT", "typeStr": "TEXT", "precision": -1, "scale": 0},
            "typeStandard": text,
        },
        {
            "name": "company_name",
            "updateable": False,
            "type": {"name": "TEXT", "typeStr": "TEXT", "precision": -1, "scale": 0},
            "typeStandard": text,
        },
        {
            "name": "founded",
            "updateable": False,
            "type": {"name": "INTEGER", "typeStr": "INTEGER", "precision": -1, "scale": 0},
            "typeStandard": {"name": "integer", "typeStr": "integer"},
        },
    ]


def test_sync_run_answers_the_results_and_no_result_schema_drops_the_schema(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str, tmp_path: Path
) -> None:
    key = server.key or ""
    job = companies_job(server, api, project, tmp_path)
    response = run_scenario(anon, key, project, job, isAsync=False)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success" and set(body["result"]) == {"results"}, body
    [named] = body["result"]["results"]
    assert [c["name"] for c in named["result"]["schema"]] == ["id", "company_name", "founded"]
    assert [r["company_name"] for r in named["result"]["records"]] == ["IBM", "Microsoft"]

    bare = run_scenario(anon, key, project, job, isAsync=False, noResultSchema=True).json()
    [named] = bare["result"]["results"]
    assert named == {
        "name": "companies",
        "result": {"records": named["result"]["records"]},
    }
    assert len(named["result"]["records"]) == 2


def test_a_python_steps_records_get_an_inferred_schema(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, [command("echo first", name="first"), records_step(2)])
    body = run_scenario(anon, server.key, project, job, isAsync=False).json()
    [named] = body["result"]["results"]
    assert named["name"] == "rows"  # the last step gives the run its result
    assert named["result"]["records"] == [
        {"id": 0, "name": "row 0", "score": 0.0, "ok": True},
        {"id": 1, "name": "row 1", "score": 1.5, "ok": False},
    ]
    types = {
        c["name"]: (c["type"]["typeStr"], c["typeStandard"]["name"])
        for c in named["result"]["schema"]
    }
    assert types == {
        "id": ("integer", "integer"),
        "name": ("text", "text"),
        "score": ("float", "float"),
        "ok": ("boolean", "boolean"),
    }


def test_any_other_result_becomes_records_with_a_schema(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    def python(name: str, callable_: str, **kwargs: Any) -> dict[str, Any]:
        return {"name": name, "kind": "python", "config": {"callable": callable_, "kwargs": kwargs}}

    cases = [
        (python("count", "fixtures_steps:chatty", lines=1), [{"value": 1}], ["integer"]),
        (
            python("one", "fixtures_steps:echo", a="x", b=2),
            [{"a": "x", "b": 2}],
            ["text", "integer"],
        ),
        # A result that looks like records with a schema that is none: the schema is inferred.
        (
            python("odd", "fixtures_steps:echo", schema=["x"], records=[1, {"a": True}]),
            [{"value": 1}, {"a": True}],
            ["integer", "boolean"],
        ),
        (python("none", "fixtures_steps:echo"), [{}], []),
    ]
    for step, records, standards in cases:
        job = make_job(api, project, [step])
        body = run_scenario(anon, server.key, project, job, isAsync=False).json()
        assert body["status"] == "success", body
        [named] = body["result"]["results"]
        assert named["name"] == step["name"]
        assert named["result"]["records"] == records
        assert [c["typeStandard"]["name"] for c in named["result"]["schema"]] == standards


def test_the_step_marked_result_names_the_results_and_parameters_reach_the_job(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    steps = [
        {
            "name": "echoed",
            "kind": "python",
            "result": True,
            "config": {"callable": "fixtures_steps:echo", "kwargs": {"who": "{{ params.who }}"}},
        },
        command("true", name="after"),
    ]
    steps[1]["needs"] = ["echoed"]
    job = make_job(api, project, steps, parameters={"who": "nobody"})
    body = run_scenario(
        anon, server.key, project, job, isAsync=False, parameters={"who": "InfoLink"}
    ).json()
    [named] = body["result"]["results"]
    assert named["name"] == "echoed"
    assert named["result"]["records"] == [{"who": "InfoLink"}]


def test_a_caller_job_id_names_the_run_and_the_same_id_returns_the_same_run(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    key = server.key or ""
    job = make_job(api, project, [records_step(1)])
    job_id = _name("nightly-load")
    first = run_scenario(anon, key, project, job, jobId=job_id)
    again = run_scenario(anon, key, project, job, jobId=job_id)
    assert first.json() == again.json() == {"status": "success", "result": {"jobId": job_id}}
    runs = api.get(f"/api/v1/projects/{project}/executions", params={"job": job}).json()
    assert [r["id"] for r in runs["items"]] == [job_id]
    # Sync with the same id waits for that run and answers its results; nothing new starts.
    sync = run_scenario(anon, key, project, job, jobId=job_id, isAsync=False).json()
    assert sync["result"]["results"][0]["result"]["records"] == [
        {"id": 0, "name": "row 0", "score": 0.0, "ok": True}
    ]
    assert len(api.get(f"/api/v1/projects/{project}/executions").json()["items"]) == 1
    # The id already names a run of another scenario: refused, not replayed.
    other = make_job(api, project, [records_step(1)])
    assert_error(run_scenario(anon, key, project, other, jobId=job_id), 409, "execution_id_taken")


# --- the status and stop words ------------------------------------------------------------


def test_status_words_completed_with_error_and_the_failed_sync_answer(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    key = server.key or ""
    job = make_job(api, project, [command("echo trouble >&2; exit 3", name="load")])
    job_id = run_scenario(anon, key, project, job).json()["result"]["jobId"]
    result = settled(anon, key, project, job_id)
    assert result["status"] == "completedWithError", result
    assert "load" in result["message"] and "3" in result["message"], result
    assert "results" not in result

    sync = run_scenario(anon, key, project, job, isAsync=False)
    assert sync.status_code == 200, sync.text
    body = sync.json()
    assert body["status"] == "error"
    assert body["result"]["status"] == "completedWithError"
    assert "load" in body["result"]["message"]


def test_stop_words_follow_the_run_from_running_to_stopped(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    key = server.key or ""
    key_id = key.removeprefix("jpk_").split("_", 1)[0]
    # It ignores SIGTERM, so it stays `cancelling` until the grace period (2 s) ends.
    job = make_job(api, project, [command("trap '' TERM; echo up; sleep 30")])
    job_id = run_scenario(anon, key, project, job).json()["result"]["jobId"]
    wait_for(lambda: api.get(f"/api/v1/executions/{job_id}").json()["logLines"] >= 2)
    assert status_of(anon, key, project, job_id)["status"] == "running"

    params = {"apiKey": key, "appId": project, "jobId": job_id}
    assert anon.get(STOP, params=params).json() == {
        "status": "success",
        "result": {"status": "stop started"},
    }
    assert anon.get(STOP, params=params).json()["result"] == {"status": "already being stopped"}
    assert status_of(anon, key, project, job_id)["status"] == "stopping"
    assert settled(anon, key, project, job_id) == {"status": "stopped", "jobId": job_id}
    assert anon.get(STOP, params=params).json()["result"] == {"status": "already completed"}
    assert api.get(f"/api/v1/executions/{job_id}").json()["status"] == "cancelled"
    # A stop is a GET, and still in the audit log, once: the call that started it.
    entries = api.get("/api/v1/audit", params={"action": "infolink_stop_job"}).json()["items"]
    mine = [e for e in entries if (e["details"] or {}).get("executionId") == job_id]
    assert [(e["outcome"], e["principal"]) for e in mine] == [("ok", f"apiKey:{key_id}")]


def test_a_console_session_cannot_stop_a_job_with_a_get(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    # stopJob.jsp changes state on a GET, which a session's CSRF check does not cover: a
    # page that sends a signed-in user's browser there must not stop anything.
    username, password = _name("sam"), "sam's long password"
    roles = [{"role": "Operator", "project": project}]
    made = api.post(
        "/api/v1/users", json={"username": username, "password": password, "roles": roles}
    )
    assert made.status_code == 201, made.text
    job = make_job(api, project, [command("sleep 30")])
    job_id = run_scenario(anon, server.key, project, job).json()["result"]["jobId"]
    with httpx2.Client(base_url=server.url, timeout=30) as browser:
        signed_in = browser.post(
            "/api/v1/session", json={"username": username, "password": password}
        )
        assert signed_in.status_code == 201, signed_in.text
        assert browser.get("/api/v1/me").status_code == 200  # the session works
        stop = browser.get(STOP, params={"appId": project, "jobId": job_id})
        assert_error(stop, 401, "missing_credentials")
        status = browser.get(STATUS, params={"appId": project, "jobId": job_id})
        assert_error(status, 401, "missing_credentials")
    assert api.get(f"/api/v1/executions/{job_id}").json()["status"] in ("queued", "running")
    assert api.post(f"/api/v1/executions/{job_id}/cancel").is_success


def test_stopping_a_completed_job_says_already_completed(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    key = server.key or ""
    job = make_job(api, project, [records_step(1)])
    job_id = _name("done")
    body = run_scenario(anon, key, project, job, jobId=job_id, isAsync=False).json()
    assert body["status"] == "success"
    params = {"apiKey": key, "appId": project, "jobId": job_id}
    assert anon.get(STOP, params=params).json()["result"] == {"status": "already completed"}
    assert api.get(f"/api/v1/executions/{job_id}").json()["status"] == "succeeded"


# --- the ways in ----------------------------------------------------------------------------


def _token(anon: httpx2.Client, **form: str) -> dict[str, Any]:
    response = anon.post(TOKEN, data=form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}, body
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    return body


def _key(api: httpx2.Client, role: str, project: str | None = None) -> dict[str, Any]:
    roles = [{"role": role, **({"project": project} if project else {})}]
    response = api.post("/api/v1/keys", json={"description": "infolink test", "roles": roles})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_each_way_in_runs_and_reads_the_same_job(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, [records_step(1)])
    made = _key(api, "Operator", project)
    key = made["key"]

    # apiKey in the JSON body
    job_id = run_scenario(anon, key, project, job).json()["result"]["jobId"]
    # apiKey in the query, for the GET calls
    assert settled(anon, key, project, job_id)["status"] == "completed"
    # apiKey in the query of the POST too
    response = anon.post(
        EXECUTE,
        params={"apiKey": key},
        json={
            "appId": project,
            "operation": {"opName": "RunScenario", "opParams": {"scenario": job}},
        },
    )
    assert response.json()["status"] == "success", response.text
    # the key string as a bearer
    response = anon.get(STATUS, params={"appId": project, "jobId": job_id}, headers=_bearer(key))
    assert response.json()["result"]["status"] == "completed", response.text

    # client_credentials, in the form or by HTTP Basic: a token with the key's own rights
    client_id, secret = made["clientId"], made["clientSecret"]
    tokens = _token(
        anon, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    basic = anon.post(TOKEN, data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert basic.status_code == 200 and basic.json()["refresh_token"], basic.text
    with httpx2.Client(
        base_url=server.url, headers=_bearer(tokens["access_token"]), timeout=30
    ) as bearer:
        by_token = run_scenario(bearer, None, project, job, isAsync=False)
        # The same token works on the native API, as one from /connect/token does.
        assert bearer.get(f"/api/v1/executions/{job_id}").status_code == 200
    assert by_token.json()["status"] == "success", by_token.text
    native = anon.get(f"/api/v1/executions/{job_id}", headers=_bearer(tokens["refresh_token"]))
    assert native.status_code == 401, native.text  # a refresh token is no access token there
    assert api.get(f"/api/v1/executions/{job_id}").json()["principal"] == f"apiKey:{client_id}"

    # refresh_token: a new pair that works the same
    refreshed = _token(anon, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    response = anon.get(
        STATUS,
        params={"appId": project, "jobId": job_id},
        headers=_bearer(refreshed["access_token"]),
    )
    assert response.json()["result"]["status"] == "completed", response.text
    # A refresh token is no access token, and an access token no refresh token.
    refused = anon.get(
        STATUS,
        params={"appId": project, "jobId": job_id},
        headers=_bearer(tokens["refresh_token"]),
    )
    assert_error(refused, 401, "invalid_credentials")
    not_refresh = anon.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["access_token"]}
    )
    assert_error(not_refresh, 401, "invalid_credentials")


def test_the_password_grant_gives_a_console_user_their_own_rights(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, [records_step(1)])
    username, password = _name("ann"), "ann's long password"
    created = api.post(
        "/api/v1/users",
        json={
            "username": username,
            "password": password,
            "roles": [{"role": "Operator", "project": project}],
        },
    )
    assert created.status_code == 201, created.text
    tokens = _token(anon, grant_type="password", username=username, password=password)
    user = httpx2.Client(base_url=server.url, headers=_bearer(tokens["access_token"]), timeout=30)
    with user:
        body = run_scenario(user, None, project, job, isAsync=False).json()
        assert body["status"] == "success", body
        runs = api.get(f"/api/v1/projects/{project}/executions").json()["items"]
        assert runs[0]["principal"] == f"user:{username}"
        # Only in the project the user's role is in.
        other = _name("other")
        assert api.post("/api/v1/projects", json={"name": other}).status_code == 201
        make_job(api, other, [records_step(1)], name="same")
        assert_error(run_scenario(user, None, other, "same"), 403, "project_forbidden")

    # InfoLink's own form also sends its client: a valid key's id and secret are taken...
    made = _key(api, "Viewer")
    with_client = _token(
        anon,
        grant_type="password",
        client_id=made["clientId"],
        client_secret=made["clientSecret"],
        username=username,
        password=password,
    )
    refreshed = _token(anon, grant_type="refresh_token", refresh_token=with_client["refresh_token"])
    params = {"appId": project, "jobId": runs[0]["id"]}
    ok = anon.get(STATUS, params=params, headers=_bearer(refreshed["access_token"]))
    assert ok.json()["result"]["status"] == "completed", ok.text
    # ... and a wrong one is refused.
    wrong_client = anon.post(
        TOKEN,
        data={
            "grant_type": "password",
            "client_id": made["clientId"],
            "client_secret": "not-the-secret",
            "username": username,
            "password": password,
        },
    )
    assert_error(wrong_client, 401)
    wrong = anon.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": "wrong password"}
    )
    assert_error(wrong, 401, "invalid_credentials")

    # A new password ends the tokens given for the old one, refresh and access alike.
    changed = api.put(f"/api/v1/users/{username}/password", json={"password": "a newer password"})
    assert changed.status_code == 204, changed.text
    before = anon.get(STATUS, params=params, headers=_bearer(refreshed["access_token"]))
    assert_error(before, 401, "invalid_credentials")
    stale = anon.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}
    )
    assert_error(stale, 401, "invalid_credentials")

    # A disabled user's tokens stop working, access and refresh alike.
    fresh = _token(anon, grant_type="password", username=username, password="a newer password")
    database = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE users SET enabled = 0 WHERE username = ?", (username,))
    refused = anon.get(STATUS, params=params, headers=_bearer(fresh["access_token"]))
    assert_error(refused, 401, "invalid_credentials")
    again = anon.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]}
    )
    assert_error(again, 401, "invalid_credentials")


@pytest.mark.parametrize("how", ["disabled", "deleted"])
def test_refresh_tokens_end_with_their_key(
    server: Server, api: httpx2.Client, anon: httpx2.Client, how: str
) -> None:
    made = _key(api, "Operator")
    tokens = _token(
        anon,
        grant_type="client_credentials",
        client_id=made["clientId"],
        client_secret=made["clientSecret"],
    )
    # It works while the key does.
    _token(anon, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    url = f"/api/v1/keys/{made['clientId']}"
    changed = api.patch(url, json={"enabled": False}) if how == "disabled" else api.delete(url)
    assert changed.is_success, changed.text
    refused = anon.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert_error(refused, 401, "invalid_credentials")


def test_guessing_a_users_password_at_the_token_endpoint_is_slowed_as_at_login(
    make_server: Any,
) -> None:
    srv = make_server(auth_failures_per_client="3/minute").start()
    user = {"username": "guessed", "password": "the right password"}
    with srv.client() as api, srv.client(anonymous=True) as anon:
        made = api.post("/api/v1/users", json={**user, "roles": []})
        assert made.status_code == 201, made.text
        for attempt in range(3):
            wrong = anon.post(
                TOKEN, data={"grant_type": "password", **user, "password": f"x{attempt}"}
            )
            assert_error(wrong, 401, "invalid_credentials")
        # Over the limit, even the right password is refused before it is checked...
        right = anon.post(TOKEN, data={"grant_type": "password", **user})
        assert_error(right, 429, "rate_limited")
        assert int(right.headers["retry-after"]) > 0
        # ... and the console's login counts the same failures.
        login = anon.post("/api/v1/session", json=user)
        assert login.status_code == 429, login.text


def test_rotating_a_key_ends_the_refresh_tokens_of_its_old_secret(
    api: httpx2.Client, anon: httpx2.Client
) -> None:
    made = _key(api, "Operator")
    credentials = {"client_id": made["clientId"], "client_secret": made["clientSecret"]}
    old = _token(anon, grant_type="client_credentials", **credentials)
    # Rotated (a leaked secret's remedy), the old secret working for one more second.
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    rotated = api.post(
        f"/api/v1/keys/{made['clientId']}/rotate", json={"oldSecretValidUntil": ends.isoformat()}
    )
    assert rotated.status_code == 200, rotated.text
    # Within the overlap the old secret's refresh token still works, and so does its heir.
    heir = _token(anon, grant_type="refresh_token", refresh_token=old["refresh_token"])
    new = _token(
        anon,
        grant_type="client_credentials",
        client_id=made["clientId"],
        client_secret=rotated.json()["clientSecret"],
    )
    # Each refused refresh counts as a failed attempt from this address: wait, then ask once.
    time.sleep(max(0.0, (ends - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2)
    for stale in (old, heir):
        refused = anon.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": stale["refresh_token"]}
        )
        assert_error(refused, 401, "invalid_credentials")
    _token(anon, grant_type="refresh_token", refresh_token=new["refresh_token"])


# --- errors ---------------------------------------------------------------------------------


def test_credentials_refused_in_infolinks_shape(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, [records_step(1)])
    message = assert_error(run_scenario(anon, None, project, job), 401, "missing_credentials")
    assert "apiKey" in message
    wrong = admin_key(server.database_url).rsplit("_", 1)[0] + "_" + "x" * 44
    assert_error(run_scenario(anon, wrong, project, job), 401, "invalid_credentials")
    assert_error(run_scenario(anon, "not a key", project, job), 401, "invalid_credentials")
    params = {"apiKey": "jpk_nothing", "appId": project, "jobId": "x"}
    assert_error(anon.get(STATUS, params=params), 401, "invalid_credentials")
    bad_token = anon.get(
        STATUS, params={"appId": project, "jobId": "x"}, headers=_bearer("not.a.token")
    )
    assert_error(bad_token, 401, "invalid_credentials")
    assert bad_token.headers["www-authenticate"].startswith("Bearer")


def test_an_api_key_that_was_disabled_deleted_or_fenced_off_is_refused(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, [records_step(1)])
    disabled, deleted = _key(api, "Operator"), _key(api, "Operator")
    assert api.patch(f"/api/v1/keys/{disabled['clientId']}", json={"enabled": False}).is_success
    assert api.delete(f"/api/v1/keys/{deleted['clientId']}").is_success
    for made in (disabled, deleted):
        assert_error(run_scenario(anon, made["key"], project, job), 401, "key_revoked")
        params = {"apiKey": made["key"], "appId": project, "jobId": "x"}
        assert_error(anon.get(STATUS, params=params), 401, "key_revoked")
    fenced = api.post(
        "/api/v1/keys",
        json={
            "description": "only from the office",
            "roles": [{"role": "Operator"}],
            "firewallRules": [{"name": "office", "startIp": "10.9.9.9", "endIp": "10.9.9.9"}],
        },
    ).json()
    assert_error(run_scenario(anon, fenced["key"], project, job), 403, "ip_not_allowed")
    assert api.get(f"/api/v1/projects/{project}/executions").json()["items"] == []


def test_a_key_without_the_right_is_refused_403_and_nothing_runs(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, [records_step(1)])
    viewer = _key(api, "Viewer")["key"]
    assert_error(run_scenario(anon, viewer, project, job), 403, "insufficient_scope")
    elsewhere = _name("elsewhere")
    assert api.post("/api/v1/projects", json={"name": elsewhere}).status_code == 201
    operator_elsewhere = _key(api, "Operator", elsewhere)["key"]
    assert_error(run_scenario(anon, operator_elsewhere, project, job), 403, "project_forbidden")
    assert api.get(f"/api/v1/projects/{project}/executions").json()["items"] == []

    # A viewer reads the status but may not stop the run.
    admin = server.key or ""
    job_id = run_scenario(anon, admin, project, job).json()["result"]["jobId"]
    params = {"apiKey": viewer, "appId": project, "jobId": job_id}
    assert anon.get(STATUS, params=params).status_code == 200
    assert_error(anon.get(STOP, params=params), 403, "insufficient_scope")


def test_each_malformed_or_unknown_request_is_an_infolink_error(
    server: Server, api: httpx2.Client, anon: httpx2.Client, project: str
) -> None:
    key = server.key or ""
    job = make_job(
        api,
        project,
        [records_step(1)],
        parametersSchema={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "additionalProperties": False,
        },
    )
    op = {"opName": "RunScenario", "opParams": {"scenario": job}}
    cases: list[tuple[Any, int, str | None]] = [
        ("{not json", 400, "invalid_json"),
        ({"apiKey": key, "appId": project}, 400, "invalid_request"),  # no operation
        ({"apiKey": key, "appId": project, "operation": {**op, "opName": "Other"}}, 400, None),
        ({"apiKey": key, "appId": project, "operation": {"opName": "RunScenario"}}, 400, None),
        ({"apiKey": key, "appId": {"x": 1}, "operation": op}, 400, "invalid_request"),
        # Neither a boolean nor an empty string names an app (true is not app "1").
        ({"apiKey": key, "appId": True, "operation": op}, 400, "invalid_request"),
        ({"apiKey": key, "appId": "", "operation": op}, 400, "invalid_request"),
        ({"apiKey": key, "appId": 1.5, "operation": op}, 400, "invalid_request"),
        ({"apiKey": key, "appId": project, "operation": op, "isAsync": "perhaps"}, 400, None),
        ({"apiKey": key, "appId": project, "operation": op, "jobId": "no spaces"}, 400, None),
        (
            {
                "apiKey": key,
                "appId": project,
                "operation": {**op, "opParams": {"scenario": job, "parameters": {"n": "x"}}},
            },
            400,
            None,
        ),
        (
            {
                "apiKey": key,
                "appId": project,
                "operation": {**op, "opParams": {"scenario": job, "parameters": []}},
            },
            400,
            None,
        ),
        ({"apiKey": key, "appId": _name("nowhere"), "operation": op}, 404, "project_not_found"),
        (
            {
                "apiKey": key,
                "appId": project,
                "operation": {**op, "opParams": {"scenario": "nothing"}},
            },
            404,
            "job_not_found",
        ),
        ([1, 2], 400, "invalid_request"),
    ]
    for body, status, code in cases:
        content = body if isinstance(body, str) else json.dumps(body)
        # A body that is no object carries no apiKey: that one comes in the query.
        params = {"apiKey": key} if isinstance(body, list) else {}
        headers = {"Content-Type": "application/json"}
        response = anon.post(EXECUTE, content=content, params=params, headers=headers)
        assert_error(response, status, code)
    assert api.get(f"/api/v1/projects/{project}/executions").json()["items"] == []

    job_id = run_scenario(anon, key, project, job).json()["result"]["jobId"]
    other = _name("other")
    assert api.post("/api/v1/projects", json={"name": other}).status_code == 201
    for path in (STATUS, STOP):
        assert_error(anon.get(path, params={"apiKey": key, "appId": project}), 400)
        assert_error(anon.get(path, params={"apiKey": key, "jobId": job_id}), 400)
        unknown = {"apiKey": key, "appId": project, "jobId": "no-such-job"}
        assert_error(anon.get(path, params=unknown), 404, "execution_not_found")
        # A job of another app is unknown in this one.
        assert_error(anon.get(path, params={**unknown, "appId": other, "jobId": job_id}), 404)
        assert_error(anon.get(path, params={**unknown, "appId": _name("nowhere")}), 404)
    assert_error(anon.get(EXECUTE, params={"apiKey": key}), 405)
    nul = {"apiKey": key, "appId": "a\x00b", "jobId": job_id}
    assert_error(anon.get(STATUS, params=nul), 400)
    too_big = {"apiKey": key, "appId": project, "operation": op, "pad": "x" * 2_000_000}
    assert_error(anon.post(EXECUTE, json=too_big), 413)
    assert_error(anon.post(STATUS, params={"apiKey": key}), 405)

    # The token endpoint's own refusals.
    assert_error(anon.post(TOKEN, data={"grant_type": "authorization_code"}), 400)
    assert_error(anon.post(TOKEN, data={}), 400)
    assert_error(anon.post(TOKEN, data={"grant_type": "password", "username": "x"}), 400)
    assert_error(anon.post(TOKEN, data={"grant_type": "refresh_token"}), 400)
    assert_error(anon.post(TOKEN, data={"grant_type": "client_credentials"}), 401)
    bad = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    assert_error(anon.post(TOKEN, data=bad), 401, "invalid_credentials")
    forged = {"grant_type": "refresh_token", "refresh_token": "a.b.c"}
    assert_error(anon.post(TOKEN, data=forged), 401, "invalid_credentials")


def test_a_sync_run_longer_than_the_wait_answers_504_with_its_job_id(
    make_server: Any, tmp_path: Path
) -> None:
    srv = make_server(max_wait_seconds=1).start()
    with srv.client() as api, srv.client(anonymous=True) as anon:
        assert api.post("/api/v1/projects", json={"name": "p"}).status_code == 201
        job = make_job(api, "p", [command("sleep 20")])
        response = run_scenario(anon, srv.key, "p", job, isAsync=False)
        message = assert_error(response_without_job_id(response), 504, "still_running")
        job_id = response.json()["result"]["jobId"]
        assert job_id in message
        assert status_of(anon, srv.key or "", "p", job_id)["status"] == "running"
        stop = anon.get(STOP, params={"apiKey": srv.key, "appId": "p", "jobId": job_id})
        assert stop.json()["result"]["status"] == "stop started"


def response_without_job_id(response: httpx2.Response) -> httpx2.Response:
    """The 504 carries the jobId beside the message; the rest is InfoLink's error."""
    body = response.json()
    assert set(body["result"]) == {"message", "code", "jobId"}
    body["result"].pop("jobId")
    return httpx2.Response(response.status_code, json=body)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_on_postgresql_a_run_reports_the_databases_own_types(tmp_path: Path) -> None:
    store = create_postgres_database()
    data = create_postgres_database()
    srv = Server(store, tmp_path, encryption_key=Fernet.generate_key().decode())
    try:
        srv.start()
        import psycopg

        with psycopg.connect(data, autocommit=True) as db:
            db.execute(
                "CREATE TABLE companies (id varchar(10), company_name text, worth numeric(12,2))"
            )
            db.execute("INSERT INTO companies VALUES ('1', 'IBM', 12.50), ('2', 'Microsoft', 3.25)")
        with srv.client() as api, srv.client(anonymous=True) as anon:
            assert api.post("/api/v1/projects", json={"name": "crm"}).status_code == 201
            connection = {"name": "warehouse", "url": data}
            assert api.post("/api/v1/projects/crm/connections", json=connection).status_code == 201
            step = {
                "name": "companies",
                "kind": "sql",
                "config": {
                    "connection": "warehouse",
                    "query": "select id, company_name, worth from companies order by id",
                },
            }
            make_job(api, "crm", [step], name="Main")
            tokens = _token(
                anon,
                grant_type="client_credentials",
                client_id=(made := _key(api, "Operator", "crm"))["clientId"],
                client_secret=made["clientSecret"],
            )
            job_id = run_scenario(anon, made["key"], "crm", "Main", jobId="pg-1").json()["result"][
                "jobId"
            ]
            assert job_id == "pg-1"
            result = settled(anon, made["key"], "crm", job_id)
            assert result["status"] == "completed", result
            [named] = result["results"]
            assert named["result"]["records"] == [
                {"id": "1", "company_name": "IBM", "worth": "12.50"},
                {"id": "2", "company_name": "Microsoft", "worth": "3.25"},
            ]
            types = {c["name"]: c for c in named["result"]["schema"]}
            assert types["worth"]["type"]["name"] == "numeric"
            assert (types["worth"]["type"]["precision"], types["worth"]["type"]["scale"]) == (12, 2)
            assert types["worth"]["typeStandard"]["name"] == "decimal"
            assert types["id"]["typeStandard"]["name"] == "text"
            refreshed = _token(
                anon, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
            )
            with httpx2.Client(
                base_url=srv.url, headers=_bearer(refreshed["access_token"])
            ) as bearer:
                sync = run_scenario(bearer, None, "crm", "Main", isAsync=False, noResultSchema=True)
            assert sync.json()["result"]["results"][0]["result"] == {
                "records": named["result"]["records"]
            }
            # A console user's tokens (the password grant) on this store too.
            user = {"username": "pat", "password": "pat's long password"}
            roles = [{"role": "Operator", "project": "crm"}]
            assert api.post("/api/v1/users", json={**user, "roles": roles}).status_code == 201
            mine = _token(anon, grant_type="password", **user)
            renewed = _token(anon, grant_type="refresh_token", refresh_token=mine["refresh_token"])
            for access in (mine["access_token"], renewed["access_token"]):
                seen = anon.get(
                    STATUS, params={"appId": "crm", "jobId": "pg-1"}, headers=_bearer(access)
                )
                assert seen.json()["result"]["status"] == "completed", seen.text
    finally:
        srv.stop()
        drop_postgres_database(store)
        drop_postgres_database(data)
