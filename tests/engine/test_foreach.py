"""Foreach runs through the real server: items from the job, a step, a query; pacing,
concurrency, timeouts, retries, cancel, a killed worker, the summary, items and logs, on a
SQLite store (tests/engine/test_foreach_postgres.py runs the store-bound ones on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from conftest import Server, wait_for


def _name(prefix: str = "fe") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def py(name: str, function: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "python",
        "config": {"callable": f"fixtures_steps:{function}", "kwargs": kwargs},
    }


def make(api: httpx2.Client, project: str, steps: list[dict[str, Any]], **fields: Any) -> str:
    name = _name()
    response = api.post(
        f"/api/v1/projects/{project}/jobs", json={"name": name, "steps": steps, **fields}
    )
    assert response.status_code == 201, response.text
    return name


def start(api: httpx2.Client, project: str, job: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute", json=body)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def final(api: httpx2.Client, execution_id: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        now = api.get(f"/api/v1/executions/{execution_id}").json()
        return now if now["status"] not in ("queued", "running", "cancelling") else None

    return wait_for(ended, timeout=timeout)  # type: ignore[no-any-return]


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def items(api: httpx2.Client, execution_id: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = -1
    while True:
        response = api.get(
            f"/api/v1/executions/{execution_id}/items",
            params={"after": after, "limit": 1000, **params},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        if page["nextAfter"] is None:
            return found
        after = page["nextAfter"]


def logs(api: httpx2.Client, execution_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/executions/{execution_id}/logs", params={"limit": 10000, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def test_each_item_runs_the_steps_with_the_item_and_context_in_templates(
    api: httpx2.Client, project: str
) -> None:
    job = make(
        api,
        project,
        [
            {
                "name": "say",
                "kind": "command",
                "config": {
                    "command": "echo 'n={{ item.n }} who={{ context.who }} "
                    "at {{ iteration.index }}'"
                },
            }
        ],
        foreach={"source": {"items": [{"n": 1}, {"n": 2}, {"n": 3}, {"n": "x; id"}]}},
        context={"who": "default", "other": "kept"},
    )
    run = start(api, project, job, context={"who": "caller $(id)"})
    done = final(api, run["id"])
    assert done["status"] == "succeeded", done
    assert done["context"] == {"who": "caller $(id)", "other": "kept"}
    assert done["iteration"]["total"] == 4
    assert done["iteration"]["succeeded"] == 4
    assert done["iteration"]["remaining"] == 0
    assert done["result"]["succeeded"] == 4
    said = {line["text"] for line in logs(api, run["id"]) if line["stream"] == "stdout"}
    # Values are data: the shell printed the caller's text, it ran none of it.
    assert said == {
        "n=1 who=caller $(id) at 0",
        "n=2 who=caller $(id) at 1",
        "n=3 who=caller $(id) at 2",
        "n=x; id who=caller $(id) at 3",
    }
    one = logs(api, run["id"], iteration=2)
    assert one and all(line["iteration"] == 2 for line in one)
    assert any(line["text"] == "n=3 who=caller $(id) at 2" for line in one)
    listed = items(api, run["id"])
    assert [(i["index"], i["status"], i["attempts"]) for i in listed] == [
        (0, "succeeded", 1),
        (1, "succeeded", 1),
        (2, "succeeded", 1),
        (3, "succeeded", 1),
    ]
    assert listed[3]["item"] == {"n": "x; id"}
    assert listed[0]["startedAt"] and listed[0]["finishedAt"]


def test_a_query_filters_the_items_and_a_run_may_give_its_own(
    api: httpx2.Client, project: str
) -> None:
    devices = [{"name": f"d{i}", "tags": {"floor": i % 3}, "on": i % 2 == 0} for i in range(9)]
    job = make(
        api,
        project,
        [{"name": "say", "kind": "command", "config": {"command": "echo {{ item.name }}"}}],
        foreach={"source": {"items": devices}, "query": {"tags.floor": {"$in": [1, 2]}}},
    )
    run = final(api, start(api, project, job)["id"])
    assert [i["item"]["name"] for i in items(api, run["id"])] == [
        "d1",
        "d2",
        "d4",
        "d5",
        "d7",
        "d8",
    ]
    assert "6 items of 9 match the query" in logs(api, run["id"])[0]["text"]
    mine = final(
        api,
        start(api, project, job, foreach={"query": {"on": True, "name": {"$regex": "^d[0-4]$"}}})[
            "id"
        ],
    )
    assert [i["item"]["name"] for i in items(api, mine["id"])] == ["d0", "d2", "d4"]
    # The run keeps the definition it ran, with its own query.
    got = api.get(f"/api/v1/projects/{project}/jobs/{job}").json()
    assert got["foreach"]["query"] == {"tags.floor": {"$in": [1, 2]}}


def test_the_records_of_an_earlier_step_are_the_items(api: httpx2.Client, project: str) -> None:
    job = make(
        api,
        project,
        [
            py("list", "records", n=5),
            {"name": "prep", "kind": "command", "config": {"command": "echo prep"}},
            {**py("each", "echo", got="{{ item.id }}"), "needs": ["prep"]},
        ],
        foreach={"source": {"step": "list"}, "query": {"id": {"$gte": 2}}},
    )
    run = final(api, start(api, project, job)["id"])
    assert run["status"] == "succeeded", run
    assert [i["item"]["id"] for i in items(api, run["id"])] == [2, 3, 4]
    texts = [line["text"] for line in logs(api, run["id"])]
    # The source step ran once; the per-item steps once per item.
    assert sum("step 'list' (python) started" in t for t in texts) == 1
    assert sum(t == "prep" for t in texts) == 3


def test_failures_are_counted_and_retried_when_asked(
    api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    marker = tmp_path / "flaky"
    job = make(
        api,
        project,
        [py("check", "fail_if", value="{{ item }}", bad="2")],
        foreach={"source": {"items": [1, 2, 3]}},
    )
    run = final(api, start(api, project, job)["id"])
    assert run["status"] == "failed"
    assert run["error"]["code"] == "items_failed"
    assert run["error"]["message"] == "1 failed of 3 items"
    assert run["iteration"]["succeeded"] == 2 and run["iteration"]["failed"] == 1
    bad = items(api, run["id"], status="failed")
    assert [(i["index"], i["attempts"]) for i in bad] == [(1, 1)]
    assert "item 2 is bad" in bad[0]["error"]

    retried = make(
        api,
        project,
        [py("flaky", "flaky", marker=f"{marker}-{{{{ item }}}}")],
        foreach={
            "source": {"items": [1, 2]},
            "retryOnFailure": True,
            "retries": 2,
            "retryDelaySeconds": 0.1,
        },
    )
    again = final(api, start(api, project, retried)["id"])
    assert again["status"] == "succeeded", again
    assert [i["attempts"] for i in items(api, again["id"])] == [2, 2]


def test_an_item_past_its_timeout_is_stopped_and_retried_on_timeout(
    api: httpx2.Client, project: str
) -> None:
    job = make(
        api,
        project,
        [{"name": "nap", "kind": "command", "config": {"command": "sleep {{ item }}"}}],
        foreach={
            "source": {"items": [0, 30, 0]},
            "timeoutSeconds": 0.5,
            "retryOnTimeout": True,
            "retries": 1,
        },
    )
    began = time.monotonic()
    run = final(api, start(api, project, job)["id"])
    assert time.monotonic() - began < 20
    assert run["status"] == "failed"
    assert run["iteration"]["timedOut"] == 1 and run["iteration"]["succeeded"] == 2
    slow = items(api, run["id"], status="timed_out")
    assert [(i["index"], i["attempts"]) for i in slow] == [(1, 2)]
    assert run["error"]["message"] == "1 timed out of 3 items"
    texts = [line["text"] for line in logs(api, run["id"], iteration=1)]
    assert "item 1 timed out after 0.5s" in texts
    assert any(t.startswith("item 1 timed_out (attempt 1); trying again") for t in texts)


def test_an_item_whose_step_ignores_its_timeout_is_left_behind_and_the_rest_run(
    api: httpx2.Client, project: str
) -> None:
    # time.sleep() in a python step cannot be interrupted: the item is given up after the
    # grace period, counted timed out, and the other items still run.
    job = make(
        api,
        project,
        [py("nap", "sleep", seconds="{{ item }}")],
        foreach={"source": {"items": [0, 30, 0, 0]}, "timeoutSeconds": 0.3, "concurrency": 2},
    )
    run = final(api, start(api, project, job)["id"], timeout=40)
    assert run["status"] == "failed"
    assert run["iteration"]["timedOut"] == 1 and run["iteration"]["succeeded"] == 3
    assert run["iteration"]["inProgress"] == 0 and run["iteration"]["remaining"] == 0
    (slow,) = items(api, run["id"], status="timed_out")
    assert slow["index"] == 1 and "did not stop within the grace period" in slow["error"]


def test_concurrency_and_delay_pace_the_items(
    api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    book = tmp_path / "book"
    job = make(
        api,
        project,
        [
            py("in", "note", path=str(book), value="+{{ item }}", seconds=0.3),
            {**py("out", "note", path=str(book), value="-{{ item }}"), "needs": ["in"]},
        ],
        foreach={"source": {"items": list(range(8))}, "concurrency": 3},
    )
    run = final(api, start(api, project, job)["id"])
    assert run["status"] == "succeeded", run
    running, most = 0, 0
    for line in book.read_text().split():
        running += 1 if line.startswith("+") else -1
        most = max(most, running)
    assert 2 <= most <= 3  # in parallel, never above the limit

    paced = make(
        api,
        project,
        [{"name": "t", "kind": "command", "config": {"command": "true"}}],
        foreach={"source": {"items": [1, 2, 3, 4]}, "delaySeconds": 0.4, "concurrency": 4},
    )
    done = final(api, start(api, project, paced)["id"])
    assert done["status"] == "succeeded"
    times = sorted(_ts(i["startedAt"]) for i in items(api, done["id"]))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.39, gaps  # each start 0.4 s after the one before


def test_an_accumulator_carries_from_item_to_item(api: httpx2.Client, project: str) -> None:
    job = make(
        api,
        project,
        [py("add", "accumulate", total="{{ accumulator }}", value="{{ item }}")],
        foreach={"source": {"items": [1, 2, 3, 4]}},
    )
    run = final(api, start(api, project, job)["id"])
    assert run["iteration"]["accumulator"] == 10
    assert run["result"]["accumulator"] == 10


def test_cancel_stops_new_items_and_the_running_ones(
    api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    book = tmp_path / "book"
    job = make(
        api,
        project,
        [py("nap", "note", path=str(book), value="{{ item }}", seconds=30)],
        foreach={"source": {"items": list(range(10))}, "concurrency": 2},
    )
    run = start(api, project, job)
    wait_for(lambda: book.exists() and len(book.read_text().split()) == 2)
    began = time.monotonic()
    response = api.post(f"/api/v1/executions/{run['id']}/cancel")
    assert response.status_code in (200, 202), response.text
    done = final(api, run["id"], timeout=30)
    assert time.monotonic() - began < 15
    assert done["status"] == "cancelled"
    assert done["iteration"]["succeeded"] == 0
    assert done["iteration"]["remaining"] == 10
    assert done["iteration"]["inProgress"] == 0
    assert len(book.read_text().split()) == 2  # no item started after the cancel
    statuses = [i["status"] for i in items(api, run["id"])]
    assert statuses == ["cancelled", "cancelled"] + ["pending"] * 8


def _worker_pid(server: Server, execution_id: str) -> int:
    engine = create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as db:
            worker = db.execute(
                text("SELECT worker FROM executions WHERE id = :id"), {"id": execution_id}
            ).scalar_one()
    finally:
        engine.dispose()
    return int(worker.rsplit(":", 1)[1])


def test_a_killed_worker_loses_no_item_and_reruns_no_ended_one(
    server: Server, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    book = tmp_path / "book"
    job = make(
        api,
        project,
        [py("work", "note", path=str(book), value="{{ item }}", seconds=0.15)],
        foreach={"source": {"items": list(range(40))}, "concurrency": 2},
    )
    run = start(api, project, job)
    wait_for(lambda: len(items(api, run["id"], status="succeeded")) >= 6, timeout=30)
    # Ended and durable before the kill (read first: a resumed run ends more at once).
    ended_before = {i["index"] for i in items(api, run["id"], status="succeeded")}
    os.kill(_worker_pid(server, run["id"]), signal.SIGKILL)
    done = final(api, run["id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert done["iteration"]["succeeded"] == 40
    assert done["iteration"]["resumes"] == 1
    ran = [int(x) for x in book.read_text().split()]
    assert set(ran) == set(range(40))  # none lost
    for index in ended_before:  # what had ended ran once
        assert ran.count(index) == 1, (index, ran)
    texts = [line["text"] for line in logs(api, run["id"])]
    assert any(t.startswith("worker lost:") and "resuming" in t for t in texts)
    assert any(t.startswith("resuming:") for t in texts)


@pytest.mark.parametrize(
    ("foreach", "reason"),
    [
        ({}, "source"),
        ({"source": {}}, "exactly one of items, step, sql, http, table"),
        ({"source": {"items": [1], "step": "a"}}, "got items, step"),
        ({"source": {"step": "nope"}}, "is not a step"),
        ({"source": {"step": "a"}}, "add a step to run per item"),
        ({"source": {"items": [1]}, "concurrency": 11}, "less than or equal to 10"),
        ({"source": {"items": [1]}, "concurrency": "2"}, "JSON number"),
        ({"source": {"items": [1]}, "query": {"$where": "1"}}, "'$where' is not supported"),
        ({"source": {"items": [1]}, "query": {"n": {"$regex": "("}}}, "does not compile"),
        ({"source": {"items": [1]}, "query": {"$and": 5}}, "non-empty list of conditions"),
        ({"source": {"items": [1]}, "query": {"n": {"$in": 3}}}, "$in takes a list"),
        ({"source": {"items": [1]}, "query": [1]}, "valid dictionary"),
        ({"source": {"items": [1]}, "retries": 6}, "less than or equal to 5"),
        ({"source": {"items": [1]}, "delaySeconds": 61}, "less than or equal to 60"),
        ({"source": {"items": [1]}, "resourceType": "car"}, "dataTableRow"),
        ({"source": {"items": [1], "path": "x"}}, "path applies only"),
        ({"source": {"sql": {"query": "select 1"}}}, "connection"),
        ({"source": {"items": [1]}, "extra": 1}, "Extra inputs"),
    ],
)
def test_a_bad_foreach_is_refused_before_anything_is_stored(
    api: httpx2.Client, project: str, foreach: dict[str, Any], reason: str
) -> None:
    name = _name()
    body = {
        "name": name,
        "steps": [{"name": "a", "kind": "command", "config": {"command": "true"}}],
        "foreach": foreach,
    }
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 422, response.text
    assert reason in response.text, response.text
    assert api.get(f"/api/v1/projects/{project}/jobs/{name}").status_code == 404


def test_a_run_refuses_a_foreach_the_job_cannot_take(api: httpx2.Client, project: str) -> None:
    plain = make(api, project, [{"name": "a", "kind": "command", "config": {"command": "true"}}])
    response = api.post(
        f"/api/v1/projects/{project}/jobs/{plain}/execute", json={"foreach": {"query": {}}}
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_foreach"
    job = make(
        api,
        project,
        [{"name": "a", "kind": "command", "config": {"command": "true"}}],
        foreach={"source": {"items": [1]}},
    )
    for body in (
        {"foreach": {"query": {"$bad": 1}}},
        {"foreach": {"source": {"items": 3}}},
        {"context": ["not", "an", "object"]},
    ):
        response = api.post(f"/api/v1/projects/{project}/jobs/{job}/execute", json=body)
        assert response.status_code == 422, (body, response.text)


def test_items_and_logs_of_an_unknown_run_are_404(api: httpx2.Client) -> None:
    assert api.get("/api/v1/executions/nope/items").status_code == 404
    assert api.get("/api/v1/executions/nope/logs", params={"iteration": 1}).status_code == 404


def test_a_killed_server_resumes_the_run_when_it_starts_again(
    make_server: Any, tmp_path: Path
) -> None:
    server = make_server().start()
    api = server.client()
    assert api.post("/api/v1/projects", json={"name": "crash"}).status_code == 201
    book = tmp_path / "book"
    job = make(
        api,
        "crash",
        [py("work", "note", path=str(book), value="{{ item }}", seconds=0.2)],
        foreach={"source": {"items": list(range(30))}, "concurrency": 2},
    )
    run = start(api, "crash", job)
    wait_for(lambda: len(items(api, run["id"], status="succeeded")) >= 4, timeout=30)
    ended_before = {i["index"] for i in items(api, run["id"], status="succeeded")}
    os.kill(server.proc.pid, signal.SIGKILL)  # the workers follow their server
    server.proc.wait(10)
    server.proc = None
    api.close()
    time.sleep(1)
    server.start()
    api = server.client()
    assert len(ended_before) >= 4
    done = final(api, run["id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert done["iteration"]["succeeded"] == 30 and done["iteration"]["resumes"] == 1
    ran = [int(x) for x in book.read_text().split()]
    assert set(ran) == set(range(30))
    for index in ended_before:
        assert ran.count(index) == 1, (index, ran)
    api.close()


def test_the_summary_shows_only_durable_ends_and_items_show_running(
    api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    # What the summary says has succeeded is in the store already: a crash never runs it
    # again. And each item says what it is doing.
    job = make(
        api,
        project,
        [py("work", "note", path=str(tmp_path / "book"), value="{{ item }}", seconds=0.1)],
        foreach={"source": {"items": list(range(30))}, "concurrency": 3},
    )
    run = start(api, project, job)
    seen_running = 0
    while True:
        now = api.get(f"/api/v1/executions/{run['id']}").json()
        stored = items(api, run["id"])
        durable = sum(i["status"] == "succeeded" for i in stored)
        if now["iteration"]:
            assert now["iteration"]["succeeded"] <= durable, (now["iteration"], durable)
        running = [i for i in stored if i["status"] == "running"]
        assert len(running) <= 3
        seen_running = max(seen_running, len(running))
        if now["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert seen_running >= 1
    assert now["status"] == "succeeded" and now["iteration"]["succeeded"] == 30
    assert {i["status"] for i in items(api, run["id"])} == {"succeeded"}


def test_object_ids_are_found_in_either_case(api: httpx2.Client, project: str) -> None:
    import hashlib

    job = make(api, project, [{"name": "a", "kind": "command", "config": {"command": "true"}}])
    got = api.get(f"/api/v1/projects/{project}/jobs/{job}").json()
    project_oid = hashlib.sha256(got["projectId"].encode()).hexdigest()[:24]
    job_oid = hashlib.sha256(got["id"].encode()).hexdigest()[:24]
    for p, j in ((project_oid, job_oid), (project_oid.upper(), job_oid.upper())):
        found = api.get(f"/api/v1/projects/{p}/jobs/{j}")
        assert found.status_code == 200 and found.json()["id"] == got["id"]
