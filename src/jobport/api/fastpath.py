"""POST .../execute without FastAPI's per-request work, for the requests that need none of it.

The profile of phase c (bench/run.py, py-spy on the server) put about a third of the event
loop's time in FastAPI and Starlette around the route: matching the path against every route,
solving the route's dependencies (the security schemes, the body, the query, the header), the
exception and exit-stack layers. The usual execute is served here instead: a JSON object that
`ExecuteRequest` takes (or no body), no query but a `wait` of plain digits, at most one
`Idempotency-Key` of at most 200 characters. It goes through the same checks
(`auth.allowed`), the same use-case (`jobs.start_run`) and the same error rendering (the app's
handler of `JobportError`), and the audit trail sees the route's own name. The middleware
around the app (input guard, audit, allowed methods) runs as for any request.

Anything else (another query parameter, another content type, a body the model refuses, a
JSON `null`) goes on to the FastAPI route unchanged, which answers as it always did: its
errors (422 with their details) are made in one place only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from jobport.api import auth
from jobport.api.guard import replay
from jobport.api.v1 import jobs, wire
from jobport.errors import JobportError

_EXECUTE = re.compile(r"^/api/v1/projects/([^/]+)/jobs/([^/]+)/execute$")
_WAIT = re.compile(rb"^wait=([0-9]{1,9}(?:\.[0-9]{1,9})?)$")
_JSON_TYPES = {"application/json"}


class FastPath:
    """ASGI middleware, innermost: serves the usual execute itself, passes on the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _EXECUTE.match(get_route_path(scope))
        wait = _wait(scope.get("query_string") or b"") if match else False
        headers = _usual_headers(scope) if match else None
        if match is None or wait is False or headers is None:
            await self.app(scope, receive, send)
            return
        key, declared_json = headers
        body = await _read(receive)
        if body is None:
            return  # the client went away
        replayed = replay(body, receive)
        # A body must say it is JSON (the route refuses it otherwise, and says why).
        parsed = _execute_request(body) if declared_json or not body else False
        if parsed is False:
            await self.app(scope, replayed, send)
            return
        project, job = match.group(1), match.group(2)
        scope["path_params"] = {"project": project, "job": job}
        scope["route"] = self._execute_route(scope["app"])  # what the audit names the action
        request = Request(scope, replayed)
        try:
            caller = auth.allowed(request, "jobs:execute")
            response = await jobs.start_run(
                request.app.state.runtime, project, job, parsed, wait, key, caller
            )
        except JobportError as exc:
            response = await request.app.exception_handlers[JobportError](request, exc)
        await response(scope, replayed, send)

    def _execute_route(self, app: Any) -> Any:
        """The route of execute_job, as the router would have put it in the scope."""
        if self._route is None:
            from fastapi.routing import iter_route_contexts

            self._route = next(
                getattr(ctx, "route", ctx)
                for ctx in iter_route_contexts(app.routes)
                if getattr(ctx, "name", None) == "execute_job"
                and getattr(ctx, "path", "") == "/api/v1/projects/{project}/jobs/{job}/execute"
            )
        return self._route


def _wait(query: bytes) -> float | bool | None:
    """The `wait` of a query that holds nothing else; False: not for the fast path."""
    if not query:
        return None
    found = _WAIT.match(query)
    return float(found.group(1)) if found else False


def _usual_headers(scope: Scope) -> tuple[str | None, bool] | None:
    """(the one Idempotency-Key, whether the body is declared JSON); None: several keys, a
    key too long, or another content type, for the FastAPI route."""
    key: str | None = None
    declared_json = False
    for name, value in scope.get("headers") or ():
        if name == b"idempotency-key":
            if key is not None:
                return None
            key = value.decode("latin-1")
            if len(key) > 200:
                return None
        elif name == b"content-type":
            kind = value.decode("latin-1").split(";", 1)[0].strip().lower()
            if kind not in _JSON_TYPES:
                return None
            declared_json = True
    return key, declared_json


def _execute_request(body: bytes) -> wire.ExecuteRequest | bool | None:
    """The body as the route's model; False: for the FastAPI route to answer."""
    if not body:
        return None
    try:
        data = json.loads(body)  # the input guard has checked it is JSON
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    try:
        return wire.ExecuteRequest.model_validate(data)
    except ValidationError:
        return False


async def _read(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
