"""Celonis's face over HTTP: the documented `requests` example, the job status, the calls
pycelonis makes (as pycelonis 2.x's integration service sends them), Celonis's error shapes,
and each way in (a key as Bearer or AppKey, a token from /oauth2/token)."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import Server, create_postgres_database, drop_postgres_database, wait_for

pytestmark = pytest.mark.timeout(180)

# The servers of these tests encrypt connections with this key (JOBPORT_ENCRYPTION_KEY).
ENCRYPTION_KEY = "l7C0mY0q7d5c9rX0a3bXy2e3o1yQKj8m8Gx3cE7n0Z4="
ACTIVE_WORDS = ("QUEUED", "RUNNING")
NOT_FOUND = ("project_not_found", "job_not_found", "execution_not_found", "not_found")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module, knowing an encryption key (the transfer job's connections);
    it stands in for the root conftest's, so `api` and `project` use it."""
    workdir = tmp_path_factory.mktemp("celonis")
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        encryption_key=ENCRYPTION_KEY,
        auth_failures_per_client="100000/minute",
        auth_failures_per_address="100000/minute",
    ).start()
    yield srv
    srv.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_job(api: httpx2.Client, project: str, *commands: str, **fields: Any) -> dict[str, Any]:
    steps = [
        {"name": f"s{i}", "kind": "command", "config": {"command": c}}
        for i, c in enumerate(commands, 1)
    ]
    body = {"name": unique("job"), "steps": fields.pop("steps", steps), **fields}
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def project_id(api: httpx2.Client, project: str) -> str:
    return str(api.get(f"/api/v1/projects/{project}").json()["id"])


def as_header(server: Server, header: str) -> httpx2.Client:
    return server.client(anonymous=True, headers={"Authorization": header})


def new_key(api: httpx2.Client, *roles: tuple[str, str | None]) -> dict[str, Any]:
    grants = [{"role": role, "project": project} for role, project in roles]
    response = api.post("/api/v1/keys", json={"description": "celonis", "roles": grants})
    assert response.status_code == 201, response.text
    return dict(response.json())


def job_status(client: httpx2.Client, pool: str, job: str) -> dict[str, Any]:
    response = client.get(f"/integration/api/pools/{pool}/jobs/{job}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def settled(client: httpx2.Client, pool: str, job: str) -> dict[str, Any]:
    """The job object once its newest run has ended (pycelonis polls the same way)."""
    return dict(
        wait_for(
            lambda: (j := job_status(client, pool, job))["status"] not in ACTIVE_WORDS and j,
            timeout=30,
        )
    )


def native_execution(api: httpx2.Client, execution_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_reference(
    response: httpx2.Response, status: int, short: str | tuple[str, ...]
) -> dict[str, Any]:
    """Celonis's ExceptionReference: {reference, message, shortMessage}, nothing of ours; the
    short message is jobport's error code (`short`, or one of them)."""
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert set(body) == {"reference", "message", "shortMessage"}, body
    assert body["shortMessage"] in ((short,) if isinstance(short, str) else short), body
    assert body["message"] and body["reference"]
    return body


def assert_validation(response: httpx2.Response, attribute: str) -> dict[str, Any]:
    """Celonis's ValidationExceptionDescriptor: 400 {errors: [{attribute, error, ...}]}."""
    assert response.status_code == 400, response.text
    body = dict(response.json())
    assert set(body) == {"errors"}, body
    first = body["errors"][0]
    assert set(first) == {"attribute", "error", "errorCode", "additionalInfo"}
    assert first["attribute"] == attribute and first["error"], body
    return body


# --- the documented example: a transfer job, in FULL then DELTA --------------------------------


def seed(path: Path, rows: int = 5) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, updated_at TIMESTAMP)"
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(i, f"c{i}", f"2026-01-01 00:00:{i:02d}") for i in range(1, rows + 1)],
        )
    # sqlite3's context manager commits but does not close: the server may write next.


def transfer_job(api: httpx2.Client, project: str, tmp_path: Path) -> dict[str, Any]:
    """A job whose one step copies `orders` from source.db to target.db by watermark."""
    seed(tmp_path / "source.db")
    for name, file in (("src", "source.db"), ("dst", "target.db")):
        body = {"name": name, "url": f"sqlite:///{tmp_path / file}"}
        response = api.post(f"/api/v1/projects/{project}/connections", json=body)
        assert response.status_code == 201, response.text
    step = {
        "name": "copy",
        "kind": "transfer",
        "config": {
            "source": {"connection": "src", "table": "orders"},
            "target": {"connection": "dst", "table": "orders"},
            "primaryKey": ["id"],
            "watermark": "updated_at",
        },
    }
    return make_job(api, project, steps=[step])


# Celonis's Python example, "Executing data jobs using a RESTful API", as the docs write it.
VENDOR_EXAMPLE = """
import requests

tenant = 'xyz' # the name of your team (your subdomain)
realm = 'xyz' # e.g. eu-1, us-1, eu-2
api_key = 'xyz' # the API key
pool_id = 'xyz' # the Data Pool ID (see above)
data_job_id = 'xyz' # the Data Job ID (see above)
data_job_mode = 'DELTA' # the mode of the Data Job (see above)

url = "https://{}.{}.celonis.cloud/integration/api/v2/data-pools/{}/data-jobs/{}/execute?mode={}".format(tenant, realm, pool_id, data_job_id, data_job_mode)

requests.post(url, headers={'authorization': "Bearer {}".format(api_key)})
"""  # noqa: E501 (the docs' lines, unchanged)


def vendor_example(server: Server, api_key: str, pool_id: str, job_id: str, mode: str) -> None:
    """Run the example as a script, pointed at the server: only its values and the tenant's
    address change (the team and realm become the server's host and port)."""
    host, port = server.url.removeprefix("http://").split(":")
    values = {
        "tenant": host,
        "realm": port,
        "api_key": api_key,
        "pool_id": pool_id,
        "data_job_id": job_id,
        "data_job_mode": mode,
    }
    lines = []
    for line in VENDOR_EXAMPLE.replace("https://{}.{}.celonis.cloud", "http://{}:{}").splitlines():
        name, _, comment = line.partition(" = ")
        if name in values:
            line = f"{name} = {values[name]!r} #{comment.partition('#')[2]}"
        lines.append(line)
    script = "\n".join(lines)
    assert "'xyz'" not in script and "celonis.cloud" not in script
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def newest_run(client: httpx2.Client, pool: str, job: str, before: str | None) -> str:
    """The id of the run the example started: the job's newest, other than `before`."""
    return str(
        wait_for(lambda: (r := job_status(client, pool, job)["currentExecutionId"]) != before and r)
    )


def test_the_documented_example_runs_full_then_delta_into_the_transfer_step(
    server: Server, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    job = transfer_job(api, project, tmp_path)
    pool = project_id(api, project)
    before = job_status(api, pool, job["id"])
    assert (before["status"], before["currentExecutionId"]) == (None, None)  # never run yet

    vendor_example(server, server.key or "", pool, job["id"], "FULL")
    run = newest_run(api, pool, job["id"], None)
    done = settled(api, pool, job["id"])
    assert done["status"] == "SUCCESS" and done["currentExecutionId"] == run
    full = native_execution(api, run)
    assert full["mode"] == "full" and full["result"]["mode"] == "full"
    assert full["result"]["rowsRead"] == 5

    # One row changes at the source: DELTA moves only it, as the transfer step's delta. The
    # pool and the data job may be named by name as well as by id.
    with sqlite3.connect(tmp_path / "source.db") as db:
        db.execute("UPDATE orders SET customer = 'new', updated_at = '2026-02-01' WHERE id = 2")
    vendor_example(server, server.key or "", project, job["name"], "DELTA")
    run = newest_run(api, pool, job["id"], run)
    assert settled(api, pool, job["id"])["status"] == "SUCCESS"
    delta = native_execution(api, run)
    assert delta["mode"] == "delta"
    assert (delta["result"]["mode"], delta["result"]["rowsRead"]) == ("delta", 1)
    with sqlite3.connect(tmp_path / "target.db") as db:
        assert db.execute("SELECT customer FROM orders WHERE id = 2").fetchall() == [("new",)]


def test_execute_answers_the_runs_execution_item(api: httpx2.Client, project: str) -> None:
    pool = project_id(api, project)
    job = make_job(api, project, "true")
    for version in ("v1", "v2"):  # the docs' example has named both versions
        path = f"/integration/api/{version}/data-pools/{project}/data-jobs/{job['name']}/execute"
        response = api.post(path, params={"mode": "DELTA"})
        assert response.status_code == 200, response.text
        item = response.json()
        assert (item["type"], item["mode"], item["jobId"], item["poolId"]) == (
            "JOB",
            "DELTA",
            job["id"],
            pool,
        )
        assert item["status"] in ("QUEUED", "RUNNING", "SUCCESS")
        assert native_execution(api, item["executionId"])["mode"] == "delta"
        settled(api, pool, job["id"])


def test_a_mode_other_than_full_or_delta_is_a_400_and_starts_nothing(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, "true")
    path = f"/integration/api/v2/data-pools/{project}/data-jobs/{job['name']}/execute"
    for query in ("?mode=SOMETIMES", "?mode=full", "?mode=", ""):
        body = assert_validation(api.post(path + query), "mode")
        assert body["errors"][0]["errorCode"] in ("INVALID_MODE", "INVALID_REQUEST")
    runs = api.get(f"/api/v1/projects/{project}/executions", params={"job": job["name"]})
    assert runs.json()["items"] == []


# --- the job's status words ----------------------------------------------------------------------


def test_the_job_object_says_success_fail_running_queued_and_cancel(
    api: httpx2.Client, project: str
) -> None:
    pool = project_id(api, project)

    def run(job: dict[str, Any]) -> dict[str, Any]:
        path = f"/integration/api/v2/data-pools/{pool}/data-jobs/{job['id']}/execute?mode=FULL"
        response = api.post(path)
        assert response.status_code == 200, response.text
        return dict(response.json())

    ok = make_job(api, project, "echo fine")
    run(ok)
    status = settled(api, pool, ok["id"])
    assert set(status) == {
        "id",
        "name",
        "dataPoolId",
        "dataSourceId",
        "timeStamp",
        "status",
        "currentExecutionId",
        "dagBasedExecutionEnabled",
        "latestExecutionItemId",
    }
    assert (status["status"], status["id"], status["name"], status["dataPoolId"]) == (
        "SUCCESS",
        ok["id"],
        ok["name"],
        pool,
    )

    bad = make_job(api, project, "exit 3")
    run(bad)
    assert settled(api, pool, bad["name"])["status"] == "FAIL"

    late = make_job(api, project, "sleep 30", timeoutSeconds=1)
    run(late)
    assert settled(api, pool, late["id"])["status"] == "FAIL"  # timed out

    # One run at a time: the first runs, the second waits its turn.
    nap = make_job(api, project, "sleep 30", maxConcurrent=1)
    first, second = run(nap), run(nap)
    wait_for(lambda: native_execution(api, first["executionId"])["status"] == "running")
    assert native_execution(api, second["executionId"])["status"] == "queued"
    now = job_status(api, pool, nap["id"])
    assert (now["status"], now["currentExecutionId"]) == ("QUEUED", second["executionId"])
    cancelled = api.post(f"/integration/api/pools/{pool}/jobs/{nap['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert settled(api, pool, nap["id"])["status"] == "CANCEL"
    for run_id in (first["executionId"], second["executionId"]):
        wait_for(lambda r=run_id: native_execution(api, r)["status"] == "cancelled")


def test_running_is_what_the_job_says_while_its_run_runs(api: httpx2.Client, project: str) -> None:
    pool = project_id(api, project)
    nap = make_job(api, project, "sleep 30")
    path = f"/integration/api/v2/data-pools/{pool}/data-jobs/{nap['id']}/execute?mode=DELTA"
    run = api.post(path).json()
    wait_for(lambda: native_execution(api, run["executionId"])["status"] == "running")
    assert job_status(api, pool, nap["id"])["status"] == "RUNNING"
    api.post(f"/api/v1/executions/{run['executionId']}/cancel")  # the native cancel, same run
    assert settled(api, pool, nap["id"])["status"] == "CANCEL"


# --- what pycelonis calls ----------------------------------------------------------------------


def pycelonis_execute(
    client: httpx2.Client, pool: str, job: str, mode: str = "DELTA", **fields: Any
) -> httpx2.Response:
    """Job.execute(): a JobExecutionConfiguration as pycelonis fills it by default."""
    body = {
        "poolId": pool,
        "jobId": job,
        "mode": mode,
        "executeOnlySubsetOfTransformations": False,
        "transformations": [],
        "executeOnlySubsetOfExtractions": False,
        "extractions": [],
        "loadOnlySubsetOfDataModels": False,
        "dataModels": [],
        **fields,
    }
    return client.post(f"/integration/api/pools/{pool}/jobs/{job}/execute", json=body)


def entity_status(client: httpx2.Client, pool: str, job_id: str) -> dict[str, Any]:
    response = client.get(f"/integration/api/pools/{pool}/logs/status")
    assert response.status_code == 200, response.text
    return next(s for s in response.json() if s["id"] == job_id)


def test_pycelonis_executes_waits_and_reads_the_error_of_the_failed_task(
    api: httpx2.Client, project: str
) -> None:
    pool = project_id(api, project)
    job = make_job(api, project, "echo first-step", "echo oops >&2; exit 4", "echo never")
    # The third step needs the second: it never runs when that fails.
    steps = job["steps"]
    steps[2]["needs"] = ["s2"]
    steps[1]["needs"] = ["s1"]
    assert api.patch(
        f"/api/v1/projects/{project}/jobs/{job['id']}", json={"steps": steps}
    ).is_success

    # pycelonis gets the pool and the job, and checks that no run is in progress.
    assert api.get(f"/integration/api/pools/{pool}").json()["name"] == project
    listed = api.get(f"/integration/api/pools/{pool}/jobs").json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert entity_status(api, pool, job["id"])["status"] is None

    assert pycelonis_execute(api, pool, job["id"]).status_code == 200
    final = wait_for(
        lambda: (s := entity_status(api, pool, job["id"]))["status"] not in ACTIVE_WORDS and s
    )
    assert final["status"] == "FAIL" and final["lastExecutionStartDate"]

    # Then, as _get_execution_detailed_error_log: the newest run, its tasks, the failed one's log.
    runs = api.get(f"/integration/api/pools/{pool}/logs/{job['id']}/executions").json()
    assert runs["numOfPages"] == 1
    last = runs["executionItems"][0]
    assert (last["type"], last["mode"], last["status"], last["jobId"]) == (
        "JOB",
        "DELTA",
        "FAIL",
        job["id"],
    )
    assert native_execution(api, last["executionId"])["mode"] == "delta"
    tasks = api.get(
        f"/integration/api/pools/{pool}/logs/executions",
        params={"executionId": last["executionId"], "type": "TASK", "id": last["jobId"]},
    ).json()
    assert [(t["taskId"], t["status"], t["type"]) for t in tasks] == [
        ("s1", "SUCCESS", "TASK"),
        ("s2", "FAIL", "TASK"),
        ("s3", "SKIPPED", "TASK"),
    ]
    failed = tasks[1]
    detail = api.get(
        f"/integration/api/pools/{pool}/logs/executions/detail",
        params={"executionId": failed["executionId"], "id": failed["taskId"], "type": "TASK"},
    ).json()
    first = detail["logMessages"][0]
    assert first["level"] == "ERROR" and first["logMessage"].startswith("step 's2' failed")
    assert all("first-step" not in m["logMessage"] for m in detail["logMessages"])
    assert any(m["logMessage"] == "oops" for m in detail["logMessages"])

    # The whole run's log, errors only, and a page of one at a time.
    whole = api.get(
        f"/integration/api/pools/{pool}/logs/executions/detail",
        params={
            "executionId": last["executionId"],
            "id": job["id"],
            "type": "JOB",
            "logLevels": "ERROR",
            "limit": 1,
        },
    ).json()
    assert whole["numOfPages"] >= 2 and len(whole["logMessages"]) == 1
    assert whole["logMessages"][0]["level"] == "ERROR"
    both = api.get(
        f"/integration/api/pools/{pool}/logs/executions/detail",
        params=[
            ("executionId", last["executionId"]),
            ("logLevels", "INFO"),
            ("logLevels", "ERROR"),
        ],
    ).json()
    assert {m["level"] for m in both["logMessages"]} == {"INFO", "ERROR"}
    assert any(m["logMessage"] == "first-step" for m in both["logMessages"])


def test_pycelonis_lists_a_jobs_runs_newest_first_a_page_at_a_time(
    api: httpx2.Client, project: str
) -> None:
    pool = project_id(api, project)
    job = make_job(api, project, "true")
    started = []
    for mode in ("FULL", "DELTA", "FULL"):
        response = pycelonis_execute(api, pool, job["id"], mode)
        assert response.status_code == 200, response.text
        started.append(response.json()["executionId"])
        settled(api, pool, job["id"])
    path = f"/integration/api/pools/{pool}/logs/{job['name']}/executions"
    first = api.get(path, params={"limit": 2}).json()
    second = api.get(path, params={"limit": 2, "page": 1}).json()
    assert first["numOfPages"] == second["numOfPages"] == 2
    shown = [i["executionId"] for i in first["executionItems"] + second["executionItems"]]
    assert shown == started[::-1]
    assert [i["mode"] for i in first["executionItems"]] == ["FULL", "DELTA"]
    assert api.get(path, params={"page": 5}).json()["executionItems"] == []


def test_pycelonis_cancel_stops_the_running_execution(api: httpx2.Client, project: str) -> None:
    pool = project_id(api, project)
    nap = make_job(api, project, "sleep 30")
    run = pycelonis_execute(api, pool, nap["id"]).json()
    wait_for(lambda: entity_status(api, pool, nap["id"])["status"] == "RUNNING")
    response = api.post(f"/integration/api/pools/{pool}/jobs/{nap['id']}/cancel")
    assert response.status_code == 200 and response.json()["id"] == nap["id"]
    wait_for(lambda: entity_status(api, pool, nap["id"])["status"] == "CANCEL")
    assert native_execution(api, run["executionId"])["status"] == "cancelled"
    # Nothing left to cancel: still a 200.
    again = api.post(f"/integration/api/pools/{pool}/jobs/{nap['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "CANCEL"


def test_a_subset_of_tasks_or_a_bad_body_is_refused_in_celonis_shape(
    api: httpx2.Client, project: str
) -> None:
    pool = project_id(api, project)
    job = make_job(api, project, "true")
    subset = pycelonis_execute(
        api, pool, job["id"], executeOnlySubsetOfTransformations=True, transformations=["x"]
    )
    assert_validation(subset, "executeOnlySubsetOfTransformations")
    assert_validation(pycelonis_execute(api, pool, job["id"], mode="WEEKLY"), "mode")
    wrong_type = pycelonis_execute(api, pool, job["id"], executeOnlySubsetOfExtractions="often")
    assert_validation(wrong_type, "executeOnlySubsetOfExtractions")
    not_json = api.post(
        f"/integration/api/pools/{pool}/jobs/{job['id']}/execute",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_reference(not_json, 400, "invalid_json")
    runs = api.get(f"/api/v1/projects/{project}/executions", params={"job": job["id"]})
    assert runs.json()["items"] == []


# --- errors ------------------------------------------------------------------------------------


def test_unknown_pools_jobs_and_executions_are_404s(api: httpx2.Client, project: str) -> None:
    pool = project_id(api, project)
    job = make_job(api, project, "true")
    other = api.post("/api/v1/projects", json={"name": unique("other")}).json()["name"]
    elsewhere = make_job(api, other, "true")
    foreign = pycelonis_execute(api, other, elsewhere["id"]).json()["executionId"]
    base = f"/integration/api/pools/{pool}"
    for response in (
        api.post(f"/integration/api/v2/data-pools/{pool}/data-jobs/nope/execute?mode=FULL"),
        api.post("/integration/api/v2/data-pools/no-such-pool/data-jobs/x/execute?mode=FULL"),
        api.get(f"{base}/jobs/nope"),
        api.get("/integration/api/pools/no-such-pool"),
        api.get(f"{base}/jobs/{elsewhere['id']}"),  # a job of another pool
        api.post(f"{base}/jobs/nope/cancel"),
        api.get(f"{base}/logs/nope/executions"),
        api.get(f"{base}/logs/executions", params={"executionId": "no-such-run"}),
        api.get(f"{base}/logs/executions/detail", params={"executionId": foreign}),
        api.get(f"{base}/nothing-here"),
    ):
        assert_reference(response, 404, NOT_FOUND)
    assert job["id"]
    # A GET where only POST is served: Celonis's shape too.
    wrong = api.get(f"/integration/api/v2/data-pools/{pool}/data-jobs/{job['id']}/execute")
    assert_reference(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["allow"].split(", ")
    # What the input guard refuses before routing comes out in Celonis's shape too.
    guarded = api.post(
        f"/integration/api/v2/data-pools/{pool}/data-jobs/{job['id']}/execute?mode=FU%00LL"
    )
    assert_validation(guarded, "query")
    assert_validation(api.get(f"{base}/logs/executions"), "executionId")
    assert_validation(
        api.get(f"{base}/logs/executions", params={"executionId": foreign, "type": "WEEK"}),
        "type",
    )
    assert_validation(
        api.get(
            f"{base}/logs/executions/detail", params={"executionId": foreign, "logLevels": "LOUD"}
        ),
        "logLevels",
    )
    assert_validation(api.get(f"{base}/logs/{job['id']}/executions?limit=0"), "limit")


def test_a_job_that_forbids_overlap_answers_a_conflict(api: httpx2.Client, project: str) -> None:
    pool = project_id(api, project)
    nap = make_job(api, project, "sleep 30", concurrencyPolicy="forbid")
    path = f"/integration/api/v2/data-pools/{pool}/data-jobs/{nap['id']}/execute?mode=FULL"
    first = api.post(path)
    assert first.status_code == 200
    assert_reference(api.post(path), 409, "already_running")
    api.post(f"/api/v1/executions/{first.json()['executionId']}/cancel")


def test_credentials_missing_wrong_or_short_of_rights(
    server: Server, api: httpx2.Client, project: str
) -> None:
    pool = project_id(api, project)
    job = make_job(api, project, "true")
    execute = f"/integration/api/v2/data-pools/{pool}/data-jobs/{job['id']}/execute?mode=FULL"
    status = f"/integration/api/pools/{pool}/jobs/{job['id']}"

    with server.client(anonymous=True) as nobody:
        assert_reference(nobody.post(execute), 401, "missing_credentials")
    for header in ("Bearer jpk_nope_nope", "AppKey not-a-key", "Basic Zm9vOmJhcg==", "AppKey"):
        with as_header(server, header) as wrong:
            response = wrong.get(status)
            assert response.status_code == 401, (header, response.text)
            assert set(response.json()) == {"reference", "message", "shortMessage"}
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    viewer = new_key(api, ("Viewer", project))["key"]
    with as_header(server, f"Bearer {viewer}") as reader:
        assert job_status(reader, pool, job["id"])["id"] == job["id"]
        assert_reference(reader.post(execute), 403, "insufficient_scope")
        assert_reference(
            reader.post(f"/integration/api/pools/{pool}/jobs/{job['id']}/cancel"),
            403,
            "insufficient_scope",
        )
    other = api.post("/api/v1/projects", json={"name": unique("o")}).json()["name"]
    elsewhere = new_key(api, ("Operator", other))
    with as_header(server, f"AppKey {elsewhere['key']}") as stranger:
        assert stranger.get(status).status_code == 403
        assert stranger.post(execute).status_code == 403
    runs = api.get(f"/api/v1/projects/{project}/executions", params={"job": job["id"]})
    assert runs.json()["items"] == []


# --- ways in -------------------------------------------------------------------------------------


def test_each_way_in_runs_the_job_bearer_key_appkey_and_token(
    server: Server, api: httpx2.Client, project: str
) -> None:
    each_way_in_runs_the_job(server, api, project)


def each_way_in_runs_the_job(server: Server, api: httpx2.Client, project: str) -> None:
    """A key as Bearer and as AppKey, and tokens from /oauth2/token (form and Basic), each
    run the job through the documented execute; AppKey also works on the native API."""
    pool = project_id(api, project)
    job = make_job(api, project, "true")
    operator = new_key(api, ("Operator", project))
    execute = f"/integration/api/v2/data-pools/{pool}/data-jobs/{job['id']}/execute?mode=FULL"

    form = {
        "grant_type": "client_credentials",
        "scope": "integration.data-pools",
        "client_id": operator["clientId"],
        "client_secret": operator["clientSecret"],
    }
    with server.client(anonymous=True) as anonymous:
        in_form = anonymous.post("/oauth2/token", data=form)
        basic = base64.b64encode(f"{operator['clientId']}:{operator['clientSecret']}".encode())
        by_basic = anonymous.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "integration.data-pools"},
            headers={"Authorization": f"Basic {basic.decode()}"},
        )
    for answer in (in_form, by_basic):
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"].lower() == "bearer"
        assert "jobs:execute" in answer.json()["scope"]  # the key's own rights
    token = in_form.json()["access_token"]

    principals = []
    for header in (
        f"Bearer {operator['key']}",
        f"AppKey {operator['key']}",
        f"Bearer {token}",
        f"Bearer {by_basic.json()['access_token']}",
    ):
        with as_header(server, header) as caller:
            response = caller.post(execute)
            assert response.status_code == 200, (header[:6], response.text)
            principals.append(native_execution(api, response.json()["executionId"])["principal"])
            assert settled(caller, pool, job["id"])["status"] == "SUCCESS"
    assert all(operator["clientId"] in str(p) for p in principals), principals

    # AppKey is a way in everywhere, as Bearer is.
    with as_header(server, f"AppKey {operator['key']}") as caller:
        assert caller.get(f"/api/v1/projects/{project}/jobs").status_code == 200


def test_the_token_endpoint_refuses_as_oauth_does(server: Server, api: httpx2.Client) -> None:
    key = new_key(api, ("Viewer", None))
    good = {"client_id": key["clientId"], "client_secret": key["clientSecret"]}
    with server.client(anonymous=True) as anonymous:
        wrong = anonymous.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", **good, "client_secret": "nope"},
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        password = anonymous.post("/oauth2/token", data={"grant_type": "password", **good})
        assert password.status_code == 400
        assert password.json()["error"] == "unsupported_grant_type"
        studio = anonymous.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "studio", **good},
        )
        assert studio.status_code == 400 and studio.json()["error"] == "invalid_scope"
        more = anonymous.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "jobs:execute", **good},
        )
        assert more.status_code == 400 and more.json()["error"] == "invalid_scope"
        missing = anonymous.post("/oauth2/token", data={"grant_type": "client_credentials"})
        assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
        get = anonymous.get("/oauth2/token")
        assert get.status_code == 405 and set(get.json()) == {"error", "error_description"}
        # jobport's own /oauth/token keeps jobport's shape.
        native = anonymous.get("/oauth/token")
        assert native.status_code == 405 and native.json()["error"] == "method_not_allowed"
        assert "details" in native.json()


# --- PostgreSQL --------------------------------------------------------------------------------


def test_the_celonis_face_on_a_postgresql_store(make_server: Any, tmp_path: Path) -> None:
    store = create_postgres_database()
    server = make_server(store, encryption_key=ENCRYPTION_KEY)
    try:
        server.start()
        with server.client() as api:
            project = unique("pg")
            assert api.post("/api/v1/projects", json={"name": project}).status_code == 201
            job = transfer_job(api, project, tmp_path)
            pool = project_id(api, project)
            run = None
            for mode, rows in (("FULL", 5), ("DELTA", 0)):
                vendor_example(server, server.key or "", pool, job["id"], mode)
                run = newest_run(api, pool, job["id"], run)
                assert settled(api, pool, job["id"])["status"] == "SUCCESS"
                done = native_execution(api, run)
                assert (done["mode"], done["result"]["rowsRead"]) == (mode.lower(), rows)
            runs = api.get(f"/integration/api/pools/{pool}/logs/{job['id']}/executions").json()
            assert [i["mode"] for i in runs["executionItems"]] == ["DELTA", "FULL"]
            assert_reference(
                api.get(f"/integration/api/pools/{pool}/jobs/nope"), 404, "job_not_found"
            )
            each_way_in_runs_the_job(server, api, project)
    finally:
        server.stop()
        drop_postgres_database(store)
