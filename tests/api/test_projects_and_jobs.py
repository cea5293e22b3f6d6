"""Projects and jobs over the real HTTP API."""

from __future__ import annotations

import httpx2

HELLO = {
    "name": "hello",
    "parameters": {"who": "world"},
    "timeoutSeconds": 600,
    "steps": [
        {"name": "greet", "kind": "command", "config": {"command": "echo hello {{ params.who }}"}},
        {
            "name": "rows",
            "kind": "python",
            "needs": ["greet"],
            "config": {"callable": "fixtures_steps:records", "kwargs": {"n": 3}},
        },
    ],
}


def test_create_project_and_read_it_by_name_or_id(api: httpx2.Client) -> None:
    created = api.post("/api/v1/projects", json={"name": "sales-ops", "description": "d"})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "sales-ops" and body["description"] == "d"
    assert api.get(f"/api/v1/projects/{body['id']}").json()["name"] == "sales-ops"
    assert api.get("/api/v1/projects/sales-ops").json()["id"] == body["id"]
    again = api.post("/api/v1/projects", json={"name": "sales-ops"})
    assert again.status_code == 409 and again.json()["error"] == "already_exists"


def test_patch_and_delete_a_project(api: httpx2.Client) -> None:
    api.post("/api/v1/projects", json={"name": "to-rename"})
    patched = api.patch("/api/v1/projects/to-rename", json={"description": "new"})
    assert patched.status_code == 200 and patched.json()["description"] == "new"
    assert api.delete("/api/v1/projects/to-rename").status_code == 204
    missing = api.get("/api/v1/projects/to-rename")
    assert missing.status_code == 404 and missing.json()["error"] == "project_not_found"


def test_create_job_returns_the_definition_with_an_empty_last_execution(
    api: httpx2.Client, project: str
) -> None:
    response = api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["name"] == "hello" and job["parameters"] == {"who": "world"}
    assert job["steps"][1]["needs"] == ["greet"]
    assert job["lastExecution"] == {}
    assert job["concurrencyPolicy"] == "allow"
    for ref in (job["id"], "hello"):
        assert api.get(f"/api/v1/projects/{project}/jobs/{ref}").json()["id"] == job["id"]


def test_job_names_are_unique_per_project(api: httpx2.Client, project: str) -> None:
    assert api.post(f"/api/v1/projects/{project}/jobs", json=HELLO).status_code == 201
    again = api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    assert again.status_code == 409 and again.json()["error"] == "already_exists"


def test_last_execution_shows_the_newest_run(api: httpx2.Client, project: str) -> None:
    api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    run = api.post(f"/api/v1/projects/{project}/jobs/hello/execute?wait=30").json()
    job = api.get(f"/api/v1/projects/{project}/jobs/hello").json()
    assert job["lastExecution"]["id"] == run["id"]
    assert job["lastExecution"]["status"] == "succeeded"
    listed = api.get(f"/api/v1/projects/{project}/jobs").json()["items"]
    assert listed[0]["lastExecution"]["status"] == "succeeded"


def test_patch_replaces_fields_and_revalidates(api: httpx2.Client, project: str) -> None:
    api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    patched = api.patch(
        f"/api/v1/projects/{project}/jobs/hello",
        json={"description": "greets", "labels": {"team": "data"}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "greets"
    assert patched.json()["labels"] == {"team": "data"}
    bad = api.patch(
        f"/api/v1/projects/{project}/jobs/hello",
        json={
            "steps": [{"name": "a", "kind": "command", "config": {"command": "x"}, "needs": ["b"]}]
        },
    )
    assert bad.status_code == 422 and "b" in bad.json()["message"]
    assert api.get(f"/api/v1/projects/{project}/jobs/hello").json()["steps"][0]["name"] == "greet"


def test_delete_job(api: httpx2.Client, project: str) -> None:
    api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    assert api.delete(f"/api/v1/projects/{project}/jobs/hello").status_code == 204
    assert api.get(f"/api/v1/projects/{project}/jobs/hello").status_code == 404


def test_list_jobs_filters_sorts_and_paginates(api: httpx2.Client, project: str) -> None:
    for i in range(7):
        job = {**HELLO, "name": f"load-{i}", "labels": {"tier": "gold" if i % 2 else "silver"}}
        assert api.post(f"/api/v1/projects/{project}/jobs", json=job).status_code == 201
    api.post(f"/api/v1/projects/{project}/jobs", json={**HELLO, "name": "report"})
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, "q": "load", "sort": "-name"}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/api/v1/projects/{project}/jobs", params=params).json()
        names += [j["name"] for j in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert names == [f"load-{i}" for i in reversed(range(7))]
    gold = api.get(f"/api/v1/projects/{project}/jobs", params={"label": "tier:gold"}).json()
    assert [j["name"] for j in gold["items"]] == ["load-1", "load-3", "load-5"]
    bad = api.get(f"/api/v1/projects/{project}/jobs", params={"sort": "color"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_sort"


def test_openapi_and_docs_are_served(api: httpx2.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert "/api/v1/projects/{project}/jobs/{job}/execute" in spec["paths"]
    assert api.get("/docs").status_code == 200
    assert api.get("/healthz").json()["status"] == "ok"


def test_newest_run_is_by_time_even_with_caller_given_ids(api: httpx2.Client, project: str) -> None:
    api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    url = f"/api/v1/projects/{project}/jobs/hello/execute"
    first = api.post(url, params={"wait": 30}, json={"executionId": "zzz-sorts-last"}).json()
    second = api.post(url, params={"wait": 30}).json()
    job = api.get(f"/api/v1/projects/{project}/jobs/hello").json()
    assert job["lastExecution"]["id"] == second["id"]
    listed = api.get(f"/api/v1/projects/{project}/executions").json()["items"]
    assert [e["id"] for e in listed] == [second["id"], first["id"]]


def test_patch_accepts_snake_case_field_names_like_post(api: httpx2.Client, project: str) -> None:
    api.post(f"/api/v1/projects/{project}/jobs", json=HELLO)
    patched = api.patch(f"/api/v1/projects/{project}/jobs/hello", json={"timeout_seconds": 5})
    assert patched.status_code == 200, patched.text
    assert patched.json()["timeoutSeconds"] == 5
