"""Executing jobs: async and sync, idempotency, concurrency policies, results."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2

from conftest import wait_for


def make_job(api: httpx2.Client, project: str, **fields: Any) -> dict[str, Any]:
    body = {"name": fields.pop("name", f"job-{uuid.uuid4().hex[:8]}"), **fields}
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def py(name: str, callable_: str, **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "kind": "python", "config": {"callable": callable_, "kwargs": kwargs}}


def sh(name: str, command: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": command}, **extra}


def execute(api: httpx2.Client, project: str, job: str, **kwargs: Any) -> httpx2.Response:
    params = {"wait": kwargs.pop("wait")} if "wait" in kwargs else {}
    headers = kwargs.pop("headers", {})
    return api.post(
        f"/api/v1/projects/{project}/jobs/{job}/execute",
        params=params,
        json=kwargs,
        headers=headers,
    )


def final(api: httpx2.Client, execution_id: str, timeout: float = 20) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body = api.get(f"/api/v1/executions/{execution_id}").json()
        ok = body["status"] in {"succeeded", "failed", "cancelled", "timed_out"}
        return body if ok else None

    return wait_for(ended, timeout)


def test_async_execute_answers_202_with_location_then_succeeds(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(
        api,
        project,
        parameters={"who": "world"},
        steps=[sh("greet", "echo hello {{ params.who }}")],
    )
    response = execute(api, project, job["name"], parameters={"who": "jobport"})
    assert response.status_code == 202
    execution = response.json()
    assert response.headers["location"] == f"/api/v1/executions/{execution['id']}"
    assert execution["status"] in {"queued", "running", "succeeded"}
    assert execution["trigger"] == "api" and execution["parameters"] == {"who": "jobport"}
    done = final(api, execution["id"])
    assert done["status"] == "succeeded"
    assert done["steps"][0]["status"] == "succeeded" and done["steps"][0]["startedAt"]
    assert done["startedAt"] and done["finishedAt"] and done["error"] is None
    lines = api.get(f"/api/v1/executions/{execution['id']}/logs").json()["items"]
    assert "hello jobport" in [ln["text"] for ln in lines if ln["stream"] == "stdout"]


def test_sync_execute_returns_the_finished_run_with_its_result(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(
        api,
        project,
        parameters={"n": 2},
        steps=[py("rows", "fixtures_steps:records", n="{{ params.n }}")],
    )
    response = execute(api, project, job["name"], wait=30, parameters={"n": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert [c["name"] for c in body["result"]["schema"]] == ["id", "name", "score", "ok"]
    assert [c["type"] for c in body["result"]["schema"]] == [
        "integer",
        "string",
        "number",
        "boolean",
    ]
    assert len(body["result"]["records"]) == 3
    result = api.get(f"/api/v1/executions/{body['id']}/result").json()
    assert result == body["result"]
    bare = api.get(f"/api/v1/executions/{body['id']}/result", params={"noSchema": "true"}).json()
    assert "schema" not in bare and len(bare["records"]) == 3


def test_sync_execute_that_outlasts_the_wait_answers_202(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("slow", "sleep 5")])
    response = execute(api, project, job["name"], wait=0.5)
    assert response.status_code == 202
    assert response.json()["status"] in {"queued", "running"}
    assert response.headers["location"].endswith(response.json()["id"])
    api.post(f"/api/v1/executions/{response.json()['id']}/cancel")


def test_result_before_the_end_is_a_409(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("slow", "sleep 5")])
    run = execute(api, project, job["name"]).json()
    response = api.get(f"/api/v1/executions/{run['id']}/result")
    assert response.status_code == 409 and response.json()["error"] == "not_finished"
    api.post(f"/api/v1/executions/{run['id']}/cancel")


def test_the_same_idempotency_key_never_starts_a_second_run(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[sh("a", "echo once")])
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = execute(api, project, job["name"], headers=key)
    second = execute(api, project, job["name"], headers=key)
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    runs = api.get(f"/api/v1/projects/{project}/executions", params={"job": job["name"]}).json()
    assert len(runs["items"]) == 1


def test_a_caller_given_execution_id_is_used_and_replayed(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("a", "echo once")])
    caller_id = f"ci-build-{uuid.uuid4().hex[:8]}"
    first = execute(api, project, job["name"], executionId=caller_id, wait=30)
    assert first.status_code == 200 and first.json()["id"] == caller_id
    again = execute(api, project, job["name"], executionId=caller_id)
    assert again.status_code == 200 and again.json()["id"] == caller_id
    other = make_job(api, project, steps=[sh("a", "echo other")])
    clash = execute(api, project, other["name"], executionId=caller_id)
    assert clash.status_code == 409 and clash.json()["error"] == "execution_id_taken"


def test_forbid_answers_409_with_the_running_execution(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, concurrencyPolicy="forbid", steps=[sh("slow", "sleep 30")])
    first = execute(api, project, job["name"]).json()
    second = execute(api, project, job["name"])
    assert second.status_code == 409
    assert second.json()["error"] == "already_running"
    assert second.json()["details"]["executionId"] == first["id"]
    api.post(f"/api/v1/executions/{first['id']}/cancel")
    assert final(api, first["id"])["status"] == "cancelled"
    assert execute(api, project, job["name"], wait=0).status_code == 202


def test_replace_cancels_the_running_execution(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, concurrencyPolicy="replace", steps=[sh("slow", "sleep 30")])
    first = execute(api, project, job["name"]).json()
    wait_for(lambda: api.get(f"/api/v1/executions/{first['id']}").json()["status"] == "running")
    second = execute(api, project, job["name"]).json()
    assert final(api, first["id"])["status"] == "cancelled"
    assert api.get(f"/api/v1/executions/{second['id']}").json()["status"] in {"queued", "running"}
    api.post(f"/api/v1/executions/{second['id']}/cancel")


def test_max_concurrent_holds_runs_back_until_one_ends(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, maxConcurrent=1, steps=[sh("s", "sleep 1")])
    ids = [execute(api, project, job["name"]).json()["id"] for _ in range(2)]
    runs = [final(api, i) for i in ids]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[1]["startedAt"] >= runs[0]["finishedAt"]


def test_a_failing_python_step_fails_the_run_with_its_message_and_traceback(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[py("bad", "fixtures_steps:boom", message="no rows")])
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "step_failed"
    assert "no rows" in body["error"]["message"]
    assert body["steps"][0]["status"] == "failed"
    logs = api.get(f"/api/v1/executions/{body['id']}/logs").json()["items"]
    text = "\n".join(ln["text"] for ln in logs)
    assert "Traceback" in text and "ValueError: no rows" in text
    assert "about to fail" in text  # print() inside the step is captured


def test_a_non_zero_exit_fails_the_step_and_skips_what_needs_it(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(
        api, project, steps=[sh("a", "echo oops >&2; exit 3"), sh("b", "echo never", needs=["a"])]
    )
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "failed"
    assert "exited with code 3" in body["error"]["message"]
    assert [s["status"] for s in body["steps"]] == ["failed", "skipped"]
    logs = api.get(f"/api/v1/executions/{body['id']}/logs").json()["items"]
    assert any(ln["text"] == "oops" and ln["stream"] == "stderr" for ln in logs)


def test_continue_on_error_lets_dependants_run(api: httpx2.Client, project: str) -> None:
    job = make_job(
        api,
        project,
        steps=[sh("a", "exit 1", continueOnError=True), sh("b", "echo ran", needs=["a"])],
    )
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "succeeded"
    assert [s["status"] for s in body["steps"]] == ["failed", "succeeded"]


def test_an_undefined_template_name_fails_the_step_clearly(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[sh("a", "echo {{ params.missing }}")])
    body = execute(api, project, job["name"], wait=30).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "template_error"
    assert "missing" in body["error"]["message"] and "command" in body["error"]["message"]


def test_templates_see_mode_execution_job_and_earlier_results(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(
        api,
        project,
        parameters={"x": 1},
        steps=[
            py("first", "fixtures_steps:echo", value="{{ params.x }}"),
            {
                **py(
                    "second",
                    "fixtures_steps:echo",
                    seen="{{ steps.first.result.value }}|{{ mode }}|{{ job.name }}"
                    "|{{ execution.id }}",
                ),
                "needs": ["first"],
            },
        ],
    )
    body = execute(api, project, job["name"], wait=30, mode="delta", parameters={"x": 7}).json()
    assert body["status"] == "succeeded", body
    assert body["mode"] == "delta"
    assert body["result"] == {"seen": f"7|delta|{job['name']}|{body['id']}"}


def test_the_step_marked_result_gives_the_result(api: httpx2.Client, project: str) -> None:
    job = make_job(
        api,
        project,
        steps=[
            {**py("rows", "fixtures_steps:records", n=2), "result": True},
            sh("after", "echo done", needs=["rows"]),
        ],
    )
    body = execute(api, project, job["name"], wait=30).json()
    assert len(body["result"]["records"]) == 2


def test_list_executions_filters_by_job_and_status_and_paginates(
    api: httpx2.Client, project: str
) -> None:
    ok = make_job(api, project, steps=[sh("a", "true")])
    bad = make_job(api, project, steps=[sh("a", "false")])
    for _ in range(3):
        execute(api, project, ok["name"], wait=30)
    execute(api, project, bad["name"], wait=30)
    url = f"/api/v1/projects/{project}/executions"
    assert len(api.get(url).json()["items"]) == 4
    failed = api.get(url, params={"status": "failed"}).json()["items"]
    assert [e["jobName"] for e in failed] == [bad["name"]]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"job": ok["name"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(url, params=params).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)
    later = api.get(url, params={"createdAfter": "2999-01-01T00:00:00Z"}).json()["items"]
    assert later == []
    assert api.get(url, params={"status": "sleeping"}).status_code == 422
