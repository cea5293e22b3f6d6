"""The Python SDK: sync and async clients over a real server, errors, apply, log following."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from conftest import Server, free_port
from jobport.client import (
    DEFAULT_URL,
    APIError,
    AsyncClient,
    Client,
    Conflict,
    JobportError,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from jobport.client import _common as sdk


def sh(name: str, command: str) -> dict[str, Any]:
    return {"name": name, "kind": "command", "config": {"command": command}}


def py(name: str, callable_: str, **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "kind": "python", "config": {"callable": callable_, "kwargs": kwargs}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def jp(server: Server) -> Iterator[Client]:
    with Client(server.url, key=server.key) as client:
        yield client


def test_execute_with_wait_returns_the_finished_run_and_its_result(
    jp: Client, project: str
) -> None:
    steps = [py("rows", "fixtures_steps:records", n="{{ params.n }}")]
    jp.create_job(project, {"name": "rows", "parameters": {"n": 1}, "steps": steps})
    run = jp.execute(project, "rows", {"n": 3}, wait=30)
    assert run["status"] == "succeeded", run
    assert run["parameters"] == {"n": 3}
    assert [r["id"] for r in run["result"]["records"]] == [0, 1, 2]
    assert jp.result(run["id"]) == run["result"]
    assert "schema" not in jp.result(run["id"], no_schema=True)
    assert jp.get_execution(run["id"])["status"] == "succeeded"


def test_a_replayed_idempotency_key_or_execution_id_returns_the_same_run(
    jp: Client, project: str
) -> None:
    jp.create_job(project, {"name": "once", "steps": [sh("hi", "echo hi")]})
    first = jp.execute(project, "once", idempotency_key="deploy-42")
    again = jp.execute(project, "once", idempotency_key="deploy-42")
    other = jp.execute(project, "once", idempotency_key="deploy-43")
    assert again["id"] == first["id"] and other["id"] != first["id"]
    named = jp.execute(project, "once", execution_id=f"run-{uuid.uuid4().hex}")
    assert jp.execute(project, "once", execution_id=named["id"])["id"] == named["id"]
    page = jp.list_executions(project, job="once")
    assert sorted(e["id"] for e in page["items"]) == sorted([first["id"], other["id"], named["id"]])
    for run in (first, other, named):
        assert jp.wait(run["id"], 20)["status"] == "succeeded"


def test_the_mode_of_an_execute_is_recorded_and_seen_by_its_steps(jp: Client, project: str) -> None:
    jp.create_job(project, {"name": "moded", "steps": [sh("say", "echo $JOBPORT_MODE {{ mode }}")]})
    runs = {mode: jp.execute(project, "moded", mode=mode, wait=30) for mode in ("delta", "full")}
    for mode, run in runs.items():
        assert run["status"] == "succeeded" and run["mode"] == mode, run
        assert jp.get_execution(run["id"])["mode"] == mode
        said = [x["text"] for x in jp.logs(run["id"])["items"] if x["stream"] == "stdout"]
        assert said == [f"{mode} {mode}"]
    assert jp.execute(project, "moded", wait=30)["mode"] == "full"  # the default
    with pytest.raises(ValidationFailed):
        jp.execute(project, "moded", mode="partial")


def test_follow_logs_yields_every_line_in_order_and_stops_at_the_end(
    jp: Client, project: str
) -> None:
    steps = [py("talk", "fixtures_steps:chatty", lines="{{ params.lines }}")]
    jp.create_job(project, {"name": "talk", "parameters": {"lines": 1}, "steps": steps})
    run = jp.execute(project, "talk", {"lines": 40})  # followed while it runs

    lines = list(jp.follow_logs(run["id"]))

    assert [x["text"] for x in lines if x["stream"] == "stdout"] == [f"line {i}" for i in range(40)]
    seqs = [x["seq"] for x in lines]
    assert seqs == sorted(set(seqs))
    assert jp.get_execution(run["id"])["status"] == "succeeded"  # it stopped because the run did
    assert [x["seq"] for x in jp.follow_logs(run["id"], after=seqs[9])] == seqs[10:]
    page = jp.logs(run["id"], after=seqs[0], limit=5)
    assert [x["seq"] for x in page["items"]] == seqs[1:6] and page["nextAfter"] == seqs[5]


def _sse(seq: int) -> bytes:
    line = {
        "seq": seq,
        "at": None,
        "step": "s",
        "stream": "stdout",
        "level": "info",
        "text": f"line {seq}",
    }
    return f"id: {seq}\nevent: log\ndata: {json.dumps(line)}\n\n".encode()


class _DroppedAfter(httpx2.SyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise httpx2.ReadError("connection reset by peer")


def test_follow_logs_resumes_a_dropped_stream_from_the_last_event_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sdk, "_backoff", lambda failures: 0)
    asked: list[tuple[str | None, str | None]] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        asked.append((request.headers.get("last-event-id"), request.url.params.get("after")))
        headers = {"content-type": "text/event-stream"}
        if len(asked) == 1:
            return httpx2.Response(200, headers=headers, stream=_DroppedAfter(_sse(1) + _sse(2)))
        end = b': keep-alive\n\nevent: end\ndata: {"status": "succeeded"}\n\n'
        return httpx2.Response(200, headers=headers, content=_sse(3) + end)

    with Client("http://jobport.test", transport=httpx2.MockTransport(server)) as jp:
        lines = list(jp.follow_logs("e1"))

    assert [x["text"] for x in lines] == ["line 1", "line 2", "line 3"]
    assert asked == [(None, "0"), ("2", "2")]


def test_follow_logs_gives_up_when_the_stream_keeps_closing_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sdk, "_backoff", lambda failures: 0)
    calls = []

    def server(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=b"")

    transport = httpx2.MockTransport(server)
    with (
        Client("http://jobport.test", transport=transport) as jp,
        pytest.raises(TransportError, match="kept closing"),
    ):
        list(jp.follow_logs("e1"))
    assert len(calls) == sdk._RECONNECTS + 1


def test_errors_carry_status_code_message_and_details(jp: Client, project: str) -> None:
    with pytest.raises(NotFound) as missing_job:
        jp.get_job(project, "missing")
    error = missing_job.value
    assert isinstance(error, APIError) and isinstance(error, JobportError)
    assert (error.status, error.code) == (404, "job_not_found")
    assert "missing" in error.message
    assert error.response is not None and error.response.status_code == 404

    with pytest.raises(NotFound) as missing_project:
        jp.list_jobs(unique("nope"))
    assert missing_project.value.code == "project_not_found"

    with pytest.raises(ValidationFailed) as invalid:
        jp.create_job(project, {"name": "bad", "steps": [{"name": "a", "kind": "nope"}]})
    assert invalid.value.code == "invalid_job"
    assert invalid.value.details[0]["field"] == "steps.0.kind"
    assert "unknown step kind 'nope'" in invalid.value.message


def test_a_job_that_forbids_concurrency_raises_conflict_while_it_runs(
    jp: Client, project: str
) -> None:
    definition = {"name": "single", "concurrencyPolicy": "forbid", "steps": [sh("nap", "sleep 30")]}
    jp.create_job(project, definition)
    first = jp.execute(project, "single")
    try:
        with pytest.raises(Conflict) as busy:
            jp.execute(project, "single")
        assert busy.value.code == "already_running"
        assert busy.value.details == {"executionId": first["id"]}
    finally:
        jp.cancel(first["id"])
    assert jp.wait(first["id"], 20)["status"] == "cancelled"


def test_cancelling_a_finished_run_is_a_conflict(jp: Client, project: str) -> None:
    jp.create_job(project, {"name": "quick", "steps": [sh("s", "true")]})
    run = jp.execute(project, "quick", wait=20)
    assert run["status"] == "succeeded"
    with pytest.raises(Conflict) as over:
        jp.cancel(run["id"])
    assert over.value.code == "already_finished" and over.value.details == {"status": "succeeded"}


def test_answers_not_from_jobport_still_map_by_status() -> None:
    def server(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/busy"):
            return httpx2.Response(
                429,
                headers={"Retry-After": "7"},
                json={"error": "rate_limited", "message": "slow down", "details": None},
            )
        return httpx2.Response(503, text="<html>bad gateway</html>")

    with Client("http://jobport.test", transport=httpx2.MockTransport(server)) as jp:
        with pytest.raises(ServerError) as down:
            jp.get_project("x")
        with pytest.raises(RateLimited) as limited:
            jp.get_project("busy")
    assert (down.value.status, down.value.code) == (503, "http_503")
    assert "bad gateway" in down.value.message
    assert limited.value.retry_after == 7.0 and limited.value.message == "slow down"


def test_an_unreachable_server_raises_transport_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, timeout=5) as jp, pytest.raises(TransportError) as unreachable:
        jp.list_projects()
    assert not isinstance(unreachable.value, APIError)
    assert isinstance(unreachable.value, JobportError)
    assert url in str(unreachable.value) and unreachable.value.url.startswith(url)


def test_the_url_defaults_to_jobport_url_then_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPORT_URL", "http://jobs.example:9000/")
    with Client() as jp:
        assert jp.url == "http://jobs.example:9000"
    monkeypatch.delenv("JOBPORT_URL")
    with Client() as jp:
        assert jp.url == DEFAULT_URL


def test_apply_job_creates_then_leaves_alone_then_updates(jp: Client, project: str) -> None:
    definition = {
        "name": "nightly",
        "parameters": {"day": "mon"},
        "labels": {"team": "data"},
        "steps": [sh("go", "echo {{ params.day }}")],
    }
    verdict, created = jp.apply_job(project, definition)
    assert verdict == "created"

    verdict, same = jp.apply_job(project, definition)
    assert verdict == "unchanged" and same["updatedAt"] == created["updatedAt"]
    # spelled differently, with defaults written out: still the same definition
    verdict, _ = jp.apply_job(project, {**definition, "timeout_seconds": None, "queue": "default"})
    assert verdict == "unchanged"

    without_labels = {k: v for k, v in definition.items() if k != "labels"}
    verdict, updated = jp.apply_job(project, without_labels)
    assert verdict == "updated"
    assert updated["labels"] == {}  # a field left out goes back to its default
    assert updated["updatedAt"] != created["updatedAt"]

    broken = {**without_labels, "steps": [{"name": "go", "kind": "command", "config": {}}]}
    with pytest.raises(ValidationFailed, match="command"):
        jp.apply_job(project, broken)
    assert jp.get_job(project, "nightly")["updatedAt"] == updated["updatedAt"]


def test_list_jobs_follows_the_pages_to_the_end(jp: Client, project: str) -> None:
    for i in range(5):
        jp.create_job(
            project, {"name": f"job{i}", "labels": {"n": str(i)}, "steps": [sh("s", "true")]}
        )
    assert [j["name"] for j in jp.list_jobs(project, page_size=2)] == [f"job{i}" for i in range(5)]
    assert [j["name"] for j in jp.list_jobs(project, q="JOB3")] == ["job3"]
    assert [j["name"] for j in jp.list_jobs(project, label="n:4")] == ["job4"]
    assert jp.list_jobs(project, sort="-name", page_size=3)[0]["name"] == "job4"


def test_list_executions_filters_by_job_and_status_and_pages(jp: Client, project: str) -> None:
    jp.create_job(project, {"name": "ok", "steps": [sh("s", "true")]})
    jp.create_job(project, {"name": "ko", "steps": [sh("s", "exit 1")]})
    runs = [jp.execute(project, "ok", wait=20) for _ in range(3)]
    failed = jp.execute(project, "ko", wait=20)
    assert failed["status"] == "failed" and failed["error"]["code"] == "step_failed"

    first = jp.list_executions(project, job="ok", status="succeeded", limit=2)
    rest = jp.list_executions(project, job="ok", limit=2, cursor=first["nextCursor"])
    seen = [e["id"] for e in first["items"] + rest["items"]]
    assert seen == [r["id"] for r in reversed(runs)] and rest["nextCursor"] is None
    only_failed = jp.list_executions(project, status=["failed", "timed_out"])["items"]
    assert [e["id"] for e in only_failed] == [failed["id"]]


def test_projects_are_created_once_listed_and_deleted(jp: Client) -> None:
    name = unique("proj")
    made = jp.ensure_project(name, "made by ensure")
    assert jp.ensure_project(name)["id"] == made["id"]
    assert made["description"] == "made by ensure"
    assert name in [p["name"] for p in jp.list_projects()]
    jp.delete_project(name)
    with pytest.raises(NotFound):
        jp.get_project(name)


def test_the_async_client_does_what_the_sync_one_does(server: Server, project: str) -> None:
    steps = [py("talk", "fixtures_steps:chatty", lines="{{ params.lines }}")]
    definition = {"name": "talk", "parameters": {"lines": 1}, "steps": steps}

    async def scenario() -> None:
        async with AsyncClient(server.url, key=server.key) as jp:
            assert (await jp.apply_job(project, definition))[0] == "created"
            assert (await jp.apply_job(project, definition))[0] == "unchanged"
            waited = await jp.execute(project, "talk", {"lines": 3}, wait=30)
            assert waited["status"] == "succeeded" and waited["result"] == 3

            run = await jp.execute(project, "talk", {"lines": 25}, idempotency_key="k1")
            assert (await jp.execute(project, "talk", idempotency_key="k1"))["id"] == run["id"]
            texts = [x["text"] async for x in jp.follow_logs(run["id"]) if x["stream"] == "stdout"]
            assert texts == [f"line {i}" for i in range(25)]
            assert (await jp.wait(run["id"], 20))["status"] == "succeeded"
            assert [j["name"] for j in await jp.list_jobs(project)] == ["talk"]

            with pytest.raises(NotFound) as missing:
                await jp.get_job(project, "missing")
            assert missing.value.code == "job_not_found"

    asyncio.run(scenario())


def test_sync_and_async_clients_mirror_each_other_method_for_method() -> None:
    def methods(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name not in {"close", "aclose"}
        }

    assert methods(Client) == methods(AsyncClient)
    assert {"apply_job", "follow_logs", "wait", "execute"} <= set(methods(Client))


def _racing_server(asked: list[str]) -> httpx2.MockTransport:
    """A project `r` that is missing, then made by someone else before our POST lands; a
    project `gone` whose GET is a 404 of another kind."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/gone"):
            return httpx2.Response(404, json={"error": "route_not_found", "message": "no"})
        if request.method == "POST":
            return httpx2.Response(409, json={"error": "already_exists", "message": "taken"})
        if len(asked) == 1:
            return httpx2.Response(404, json={"error": "project_not_found", "message": "no"})
        return httpx2.Response(200, json={"name": "r", "id": "p1"})

    return httpx2.MockTransport(answer)


def test_both_clients_ensure_a_project_that_someone_else_creates_meanwhile() -> None:
    asked: list[str] = []
    with Client("http://jobport.test", transport=_racing_server(asked), anonymous=True) as jp:
        assert jp.ensure_project("r") == {"name": "r", "id": "p1"}
        with pytest.raises(NotFound, match="no"):
            jp.ensure_project("gone")
    sync_asked = list(asked)
    assert sync_asked == [
        "GET /api/v1/projects/r",
        "POST /api/v1/projects",
        "GET /api/v1/projects/r",
        "GET /api/v1/projects/gone",
    ]

    async def scenario() -> None:
        transport = _racing_server(asked)
        async with AsyncClient("http://jobport.test", transport=transport, anonymous=True) as jp:
            assert await jp.ensure_project("r") == {"name": "r", "id": "p1"}
            with pytest.raises(NotFound, match="no"):
                await jp.ensure_project("gone")

    asked.clear()
    asyncio.run(scenario())
    assert asked == sync_asked
