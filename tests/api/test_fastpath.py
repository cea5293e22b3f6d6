"""The execute fast path (api/fastpath.py) answers exactly as the FastAPI route does.

Each request is sent twice to a real server: as is (the usual execute: the fast path serves
it) and with an extra query parameter, which the fast path passes on to the FastAPI route
(which ignores it). Both answers must agree.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx2
import pytest

from conftest import Server, admin_key
from jobport.api import fastpath

from .test_execute import make_job, sh


def both(api: httpx2.Client, path: str, **kwargs: Any) -> tuple[httpx2.Response, httpx2.Response]:
    params = kwargs.pop("params", {})
    fast = api.post(path, params=params, **kwargs)
    routed = api.post(path, params={**params, "via": "route"}, **kwargs)
    return fast, routed


def same(
    fast: httpx2.Response,
    routed: httpx2.Response,
    fields: tuple[str, ...] = ("status", "jobName", "parameters", "mode", "trigger"),
) -> dict[str, Any]:
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert fast.headers["content-type"] == routed.headers["content-type"]
    a, b = fast.json(), routed.json()
    assert set(a) == set(b)
    if fast.status_code >= 400:
        assert (a["error"], a["message"], a.get("details")) == (
            b["error"],
            b["message"],
            b.get("details"),
        )
        assert fast.headers.get("www-authenticate") == routed.headers.get("www-authenticate")
    else:
        assert fast.headers["location"] == f"/api/v1/executions/{a['id']}"
        assert routed.headers["location"] == f"/api/v1/executions/{b['id']}"
        for key in fields:
            assert a[key] == b[key], key
    return a


def test_usual_executes_answer_as_the_route_does(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("hi", "echo hi")], parameters={"day": "monday"})
    path = f"/api/v1/projects/{project}/jobs/{job['name']}/execute"

    assert same(*both(api, path))["status"] == "queued"
    done = same(*both(api, path, params={"wait": "20"}, json={"parameters": {"day": "friday"}}))
    assert (done["status"], done["parameters"]) == ("succeeded", {"day": "friday"})
    assert same(*both(api, path, json={"parameters": {"nope": 1}}))["error"] == "unknown_parameter"
    assert same(*both(api, path, json={"mode": "sideways"}))["error"] == "invalid_mode"
    # Refused by the body's model: the fast path passes both on, the route explains.
    assert same(*both(api, path, json={"nope": 1}))["error"] == "invalid_request"
    json_null = {"content": b"null", "headers": {"content-type": "application/json"}}
    assert same(*both(api, path, **json_null))["status"] == "queued"
    assert same(*both(api, path, content=b"{}"))["error"] == "invalid_request"  # no type
    blank = {"content": b"  ", "headers": {"content-type": "application/json"}}
    assert same(*both(api, path, **blank))["error"] == "invalid_json"
    unknown = f"/api/v1/projects/{project}/jobs/no-such-job/execute"
    assert same(*both(api, unknown))["error"] == "job_not_found"
    assert same(*both(api, "/api/v1/projects/no-such/jobs/x/execute"))["error"] == (
        "project_not_found"
    )


def test_replays_answer_as_the_route_does(api: httpx2.Client, project: str) -> None:
    job = make_job(api, project, steps=[sh("hi", "echo hi")])
    path = f"/api/v1/projects/{project}/jobs/{job['name']}/execute"
    run_id = f"fast-{uuid.uuid4().hex[:8]}"
    first = api.post(path, json={"executionId": run_id})
    assert first.status_code == 202
    fast, routed = both(api, path, json={"executionId": run_id})
    assert same(fast, routed, ("id", "jobName"))["id"] == run_id
    assert fast.status_code == 200

    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    made = api.post(path, headers=key)
    fast, routed = both(api, path, headers=key)
    assert same(fast, routed, ("id", "jobName"))["id"] == made.json()["id"]


def test_refused_callers_answer_as_the_route_does(
    server: Server, api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[sh("hi", "echo hi")])
    path = f"/api/v1/projects/{project}/jobs/{job['name']}/execute"
    with server.client(anonymous=True) as anonymous:
        assert same(*both(anonymous, path))["error"] == "missing_credentials"
    with server.client(anonymous=True, headers={"Authorization": "Bearer jpk_nope_nope"}) as bad:
        assert same(*both(bad, path))["error"] == "invalid_credentials"
    viewer = admin_key(server.database_url, role="Viewer", project=project)
    with server.client(anonymous=True, headers={"Authorization": f"Bearer {viewer}"}) as reader:
        assert same(*both(reader, path))["error"] == "insufficient_scope"


def test_an_execute_on_the_fast_path_is_audited_under_the_routes_name(
    api: httpx2.Client, project: str
) -> None:
    job = make_job(api, project, steps=[sh("hi", "echo hi")])
    path = f"/api/v1/projects/{project}/jobs/{job['name']}/execute"
    made = api.post(path).json()

    def entries() -> list[dict[str, Any]]:
        page = api.get("/api/v1/audit", params={"action": "execute_job", "limit": 200}).json()
        return [e for e in page["items"] if e["target"] == f"POST {path}"]

    import time

    deadline = time.monotonic() + 10
    while not entries() and time.monotonic() < deadline:
        time.sleep(0.1)
    (entry,) = entries()
    assert entry["outcome"] == "ok"
    assert made["id"]


# --- which requests the fast path takes (in process, the route and the use-case stubbed) --


class _App:
    """What the fast path needs of the app: its state, a JobportError handler."""

    def __init__(self) -> None:
        self.state = type("State", (), {"runtime": object()})()
        self.exception_handlers: dict[Any, Any] = {}


def _scope(
    path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"content-type", b"application/json")] if headers is None else headers,
        "app": _App(),
        "state": {},
    }


@pytest.mark.parametrize(
    ("query", "headers", "body", "taken"),
    [
        (b"", None, b"", True),
        (b"", None, b'{"parameters": {"a": 1}, "executionId": "x"}', True),
        (b"wait=1.5", None, b"{}", True),
        (b"wait=1&x=2", None, b"{}", False),
        (b"wait=abc", None, b"{}", False),
        (b"", [(b"content-type", b"text/plain")], b"{}", False),
        (b"", [(b"idempotency-key", b"a"), (b"idempotency-key", b"b")], b"{}", False),
        (b"", [(b"idempotency-key", b"k" * 201)], b"{}", False),
        (b"", None, b'{"nope": 1}', False),
        (b"", None, b"null", False),
        (b"", None, b"[1]", False),
        (b"", None, b"  ", False),
        (b"", [], b"{}", False),  # a body must say it is JSON
        (b"", [], b"", True),
    ],
)
def test_the_fast_path_takes_the_usual_executes_and_passes_on_the_rest(
    monkeypatch: pytest.MonkeyPatch,
    query: bytes,
    headers: list[tuple[bytes, bytes]] | None,
    body: bytes,
    taken: bool,
) -> None:
    served: list[tuple[Any, ...]] = []
    passed: list[bytes] = []

    async def start_run(*args: Any) -> Any:
        served.append(args)
        from starlette.responses import Response

        return Response(status_code=202)

    monkeypatch.setattr(fastpath.jobs, "start_run", start_run)
    monkeypatch.setattr(fastpath.auth, "allowed", lambda request, scope: "caller")

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()  # the body, replayed whole
        passed.append(message["body"])

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            pass

        scope = _scope("/api/v1/projects/p/jobs/j/execute", query, headers)
        fast = fastpath.FastPath(downstream)
        fast._route = "the execute_job route"
        await fast(scope, receive, send)

    asyncio.run(run())
    if taken:
        assert passed == [] and len(served) == 1
        _rt, project, job, parsed, wait, _key, caller = served[0]
        assert (project, job, caller) == ("p", "j", "caller")
        assert wait == (1.5 if query else None)
        if body.strip() and json.loads(body):
            assert parsed.parameters == {"a": 1} and parsed.execution_id == "x"
    else:
        assert served == [] and passed == [body]


@pytest.mark.parametrize(
    "path", ["/api/v1/projects/p/jobs/j/execute/more", "/api/v1/projects/p/jobs/j", "/healthz"]
)
def test_other_paths_pass_on(path: str) -> None:
    passed: list[str] = []

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["path"])

    async def run() -> None:
        await fastpath.FastPath(downstream)(_scope(path), None, None)  # type: ignore[arg-type]

    asyncio.run(run())
    assert passed == [path]
