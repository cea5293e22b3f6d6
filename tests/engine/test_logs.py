"""Logs: batched writes, cursor reads, live follow over server-sent events, size cap."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2

from api.test_execute import execute, final, make_job, py, sh


def all_lines(api: httpx2.Client, execution_id: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.get(
            f"/api/v1/executions/{execution_id}/logs", params={"after": after, "limit": 10000}
        ).json()
        lines += page["items"]
        after = page["nextAfter"]
        if page["finished"]:
            return lines


def test_a_run_printing_100000_lines_keeps_every_line_in_order(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[sh("flood", "seq 1 100000")])
    started = time.monotonic()
    body = execute(api, project, job["name"], wait=120).json()
    took = time.monotonic() - started
    assert body["status"] == "succeeded"
    stdout = [ln["text"] for ln in all_lines(api, body["id"]) if ln["stream"] == "stdout"]
    assert stdout == [str(i) for i in range(1, 100001)]
    assert took < 30, f"100,000 lines took {took:.1f}s"


def test_logs_are_read_by_cursor(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("count", "seq 1 25")])
    body = execute(api, project, job["name"], wait=30).json()
    first = api.get(f"/api/v1/executions/{body['id']}/logs", params={"limit": 10}).json()
    assert len(first["items"]) == 10 and not first["finished"]
    rest = api.get(
        f"/api/v1/executions/{body['id']}/logs", params={"after": first["nextAfter"]}
    ).json()
    seqs = [ln["seq"] for ln in first["items"] + rest["items"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rest["finished"] and rest["status"] == "succeeded"


def test_follow_streams_lines_live_until_the_run_ends(api: httpx2.Client, project: str) -> None:
    job = make_job(
        api,
        project,
        steps=[
            sh("tick", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done"),
        ],
    )
    run = execute(api, project, job["name"]).json()
    events: list[tuple[str, Any, float]] = []
    started = time.monotonic()
    with api.stream(
        "GET", f"/api/v1/executions/{run['id']}/logs", params={"follow": "true"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for raw in response.iter_lines():
            if raw.startswith("event: "):
                event = raw[len("event: ") :]
            elif raw.startswith("data: "):
                events.append(
                    (event or "", json.loads(raw[len("data: ") :]), time.monotonic() - started)
                )
    ticks = [(e, t) for kind, e, t in events if kind == "log" and e["stream"] == "stdout"]
    assert [e["text"] for e, _ in ticks] == [f"tick {i}" for i in range(1, 6)]
    assert ticks[-1][1] - ticks[0][1] > 0.8, "lines arrived all at once, not live"
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"


def test_follow_resumes_after_last_event_id(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("count", "seq 1 5")])
    body = execute(api, project, job["name"], wait=30).json()
    with api.stream(
        "GET",
        f"/api/v1/executions/{body['id']}/logs",
        params={"follow": "true"},
        headers={"Last-Event-ID": "3"},
    ) as response:
        ids = [int(raw[4:]) for raw in response.iter_lines() if raw.startswith("id: ")]
    assert ids and ids[0] == 4


def test_python_step_prints_become_log_lines(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[py("talk", "fixtures_steps:chatty", lines=3)])
    body = execute(api, project, job["name"], wait=30).json()
    texts = [ln["text"] for ln in all_lines(api, body["id"]) if ln["stream"] == "stdout"]
    assert texts == ["line 0", "line 1", "line 2"]


def test_log_size_is_capped_with_a_truncation_marker(make_server: Any) -> None:
    server = make_server(log_max_bytes=20_000).start()
    api = server.client()
    api.post("/api/v1/projects", json={"name": "cap"})
    job = make_job(api, "cap", steps=[sh("flood", "seq 1 50000")])
    body = execute(api, "cap", job["name"], wait=60).json()
    assert body["status"] == "succeeded"
    lines = all_lines(api, body["id"])
    total = sum(len(ln["text"].encode()) + 1 for ln in lines)
    assert total < 20_000 + 500
    markers = [ln for ln in lines if "log truncated" in ln["text"]]
    assert markers and markers[0]["level"] == "warning"
    assert "lines dropped" in markers[-1]["text"]
    stdout = [ln["text"] for ln in lines if ln["stream"] == "stdout"]
    assert stdout == [str(i) for i in range(1, len(stdout) + 1)]  # a prefix, in order
    assert final(api, body["id"])["status"] == "succeeded"
    api.close()
