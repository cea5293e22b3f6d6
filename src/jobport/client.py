"""Python SDK for the jobport REST API: `Client` and `AsyncClient`, method for method.

    from jobport.client import Client

    with Client("http://127.0.0.1:8080") as jp:        # default: $JOBPORT_URL
        jp.ensure_project("reports")
        jp.apply_job("reports", {"name": "hello", "steps": [
            {"name": "greet", "kind": "command", "config": {"command": "echo hi"}}]})
        run = jp.execute("reports", "hello", wait=60)
        print(run["status"], run["result"])

Every method returns the server's JSON (camelCase dicts) and raises one of:

    jobport.errors.JobportError     root of every error jobport raises on purpose
     ├── APIError                   the server answered with an error status; carries
     │    │                         .status .code .message .details .response
     │    ├── BadRequest            400  e.g. invalid_json
     │    ├── Unauthorized          401  no or bad credentials
     │    ├── Forbidden             403  valid credentials, not allowed
     │    ├── NotFound              404  project_not_found, job_not_found, execution_not_found
     │    ├── Conflict              409  already_running, already_finished, executions_active
     │    ├── PayloadTooLarge       413
     │    ├── ValidationFailed      422  invalid_job, unknown_parameter (.details names fields)
     │    ├── RateLimited           429  .retry_after
     │    └── ServerError           5xx
     └── TransportError             no answer: refused, timed out, dropped (.url)

These are wire errors. The server's domain exceptions in `jobport.errors` (`Invalid`,
`NotFound`, ...) share the root but never reach a client as themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal
from urllib.parse import quote

import httpx2

from jobport import __version__
from jobport.errors import JobportError

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATUSES",
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "JobportError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "Verdict",
    "definition_of",
]

DEFAULT_URL = "http://127.0.0.1:8080"
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})

Verdict = Literal["created", "updated", "unchanged"]

# Fields of a job that the server owns; the rest is the definition a user wrote.
_SERVER_FIELDS = frozenset({"id", "projectId", "createdAt", "updatedAt", "lastExecution"})
_PAGE_SIZE = 200
_RECONNECTS = 5
# A followed log stream is silent while a step is; the server sends a keep-alive every 15 s.
_STREAM_READ_TIMEOUT = 60.0


# -- errors ----------------------------------------------------------------------------------


class APIError(JobportError):
    """The server answered with an error status; `code` is its machine-readable error."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        details: Any = None,
        response: httpx2.Response | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.status = status
        self.response = response

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, {self.message!r})"


class BadRequest(APIError):
    pass


class Unauthorized(APIError):
    pass


class Forbidden(APIError):
    pass


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class PayloadTooLarge(APIError):
    pass


class ValidationFailed(APIError):
    pass


class RateLimited(APIError):
    @property
    def retry_after(self) -> float | None:
        """Seconds the server asks to wait (its Retry-After header), if it said."""
        value = self.response.headers.get("retry-after") if self.response is not None else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class ServerError(APIError):
    pass


class TransportError(JobportError):
    """No HTTP answer: the server could not be reached, or the connection failed."""

    code = "transport_error"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
}


def _error_from(response: httpx2.Response) -> APIError:
    """The APIError for an error response (read), from its JSON `{error, message, details}`."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        message = str(body.get("message") or code)
        details = body.get("details")
    else:  # not from jobport itself: a proxy, a load balancer
        code = f"http_{status}"
        message = response.text.strip()[:500] or response.reason_phrase or code
        details = None
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return kind(message, status=status, code=code, details=details, response=response)


# -- request shaping shared by both clients ---------------------------------------------------


def _path(*parts: str) -> str:
    # Names may hold spaces and dots; quote every segment whole.
    return "/api/v1/" + "/".join(quote(str(p), safe="") for p in parts)


def _query(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _execute_request(
    parameters: dict[str, Any] | None,
    mode: str,
    execution_id: str | None,
    idempotency_key: str | None,
    wait: float | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"parameters": parameters or {}, "mode": mode}
    if execution_id is not None:
        body["executionId"] = execution_id
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return _query(wait=wait), body, headers


def _schedules_path(project: str, job: str, *rest: str) -> str:
    return _path("projects", project, "jobs", job, "schedules", *rest)


def _statuses(status: str | list[str] | None) -> str | None:
    return ",".join(status) if isinstance(status, list) else status


def definition_of(job: dict[str, Any]) -> dict[str, Any]:
    """The definition part of a job as the server returns it (no id, timestamps, last run)."""
    return {k: v for k, v in job.items() if k not in _SERVER_FIELDS}


def _complete(definition: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The definition as the server would store it (defaults filled), and whether it is valid.

    An invalid one comes back as written but with every top-level field present, so that the
    server, which merges a PATCH into the stored definition, judges exactly what was written
    and names the problem in its own words.
    """
    # Imported here: pydantic and the model cost a command-line call a quarter of a second.
    from pydantic import ValidationError

    from jobport.domain.jobs import JobSpec

    try:
        return JobSpec.model_validate(definition).wire(), True
    except ValidationError:
        pass
    body = dict(definition)
    for name, field in JobSpec.model_fields.items():
        alias = field.alias or name
        if alias not in body and name not in body:
            body[alias] = (
                None if field.is_required() else field.get_default(call_default_factory=True)
            )
    return body, False


def _apply_target(definition: dict[str, Any]) -> tuple[str | None, dict[str, Any], bool]:
    if not isinstance(definition, dict):
        raise TypeError(f"a job definition is a mapping, not {type(definition).__name__}")
    body, valid = _complete(definition)
    name = definition.get("name")
    return (name if isinstance(name, str) and name else None), body, valid


def _log_event(event: httpx2.ServerSentEvent) -> dict[str, Any] | None:
    """A log line from a `log` event; None for anything else."""
    if event.event != "log":
        return None
    line: dict[str, Any] = json.loads(event.data)
    return line


def _resume_headers(after: int) -> dict[str, str]:
    return {"Last-Event-ID": str(after)} if after else {}


def _backoff(failures: int) -> float:
    return float(min(0.2 * 2 ** (failures - 1), 5.0))


class _Base:
    def __init__(self, url: str | None, timeout: float, headers: dict[str, str] | None) -> None:
        url = (url or os.environ.get("JOBPORT_URL") or DEFAULT_URL).rstrip("/")
        self.url = url if "://" in url else f"http://{url}"
        self.timeout = timeout
        self._headers = {"User-Agent": f"jobport-python/{__version__}", **(headers or {})}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _stream_timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(self.timeout, read=max(self.timeout, _STREAM_READ_TIMEOUT))

    def _wait_timeout(self, wait: float | None) -> float | None:
        # The server holds an execute?wait=N request up to N seconds before it answers.
        return None if wait is None else self.timeout + wait

    def _unreachable(self, exc: httpx2.RequestError) -> TransportError:
        try:
            request: httpx2.Request | None = exc.request
        except RuntimeError:
            request = None
        url = str(request.url) if request is not None else self.url
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
            message = f"could not reach the jobport server at {self.url}: {reason}"
        else:
            method = request.method if request is not None else "request"
            message = f"{method} {url} failed: {type(exc).__name__}: {reason}"
        return TransportError(message, url=url)

    def _dropped(self, path: str) -> TransportError:
        return TransportError(
            f"the log stream of {self.url}{path} kept closing before its end", url=self.url + path
        )


# -- sync --------------------------------------------------------------------------------------


class Client(_Base):
    """A blocking client of one jobport server. Use it as a context manager, or `close()` it."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30,
        transport: httpx2.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(url, timeout, headers)
        self._http = httpx2.Client(
            base_url=self.url, timeout=timeout, transport=transport, headers=self._headers
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                timeout=httpx2.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx2.RequestError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _collect(self, path: str, params: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": page_size, **_query(cursor=cursor)}
            page = self._json("GET", path, params=query)
            items.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    # projects

    def list_projects(self) -> list[dict[str, Any]]:
        return self._collect(_path("projects"), {}, _PAGE_SIZE)

    def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        body = {"name": name, "description": description}
        return self._json("POST", _path("projects"), json=body)

    def get_project(self, ref: str) -> dict[str, Any]:
        return self._json("GET", _path("projects", ref))

    def delete_project(self, ref: str) -> None:
        self._request("DELETE", _path("projects", ref))

    def ensure_project(self, name: str, description: str = "") -> dict[str, Any]:
        """The project named `name`, created (with `description`) if it does not exist."""
        try:
            return self.get_project(name)
        except NotFound as exc:
            if exc.code != "project_not_found":
                raise
        try:
            return self.create_project(name, description)
        except Conflict:  # created by someone else in the meantime
            return self.get_project(name)

    # jobs

    def list_jobs(
        self,
        project: str,
        q: str | None = None,
        label: str | None = None,
        sort: str = "name",
        *,
        page_size: int = _PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Every job of the project that matches, following the pages to the end."""
        params = _query(q=q, label=label, sort=sort)
        return self._collect(_path("projects", project, "jobs"), params, page_size)

    def get_job(self, project: str, job: str) -> dict[str, Any]:
        return self._json("GET", _path("projects", project, "jobs", job))

    def create_job(self, project: str, definition: dict[str, Any]) -> dict[str, Any]:
        path = _path("projects", project, "jobs")
        return self._json("POST", path, json=definition)

    def patch_job(self, project: str, job: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the given top-level fields of the job's definition."""
        path = _path("projects", project, "jobs", job)
        return self._json("PATCH", path, json=changes)

    def delete_job(self, project: str, job: str) -> None:
        self._request("DELETE", _path("projects", project, "jobs", job))

    def apply_job(self, project: str, definition: dict[str, Any]) -> tuple[Verdict, dict[str, Any]]:
        """Make the job named in `definition` match it: create it, update it, or leave it.

        Fields the definition leaves out go back to their defaults. Applying the same
        definition twice changes nothing the second time (no request but the GET).
        """
        name, body, valid = _apply_target(definition)
        if name is None:  # let the server say what is wrong
            return "created", self.create_job(project, body)
        try:
            current = self.get_job(project, name)
        except NotFound as exc:
            if exc.code != "job_not_found":
                raise
            return "created", self.create_job(project, body)
        if valid and definition_of(current) == body:
            return "unchanged", current
        return "updated", self.patch_job(project, name, body)

    # executions

    def execute(
        self,
        project: str,
        job: str,
        parameters: dict[str, Any] | None = None,
        mode: str = "full",
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        wait: float | None = None,
    ) -> dict[str, Any]:
        """Start a run; with `wait`, the server answers when it ends or after `wait` seconds.

        A known `execution_id` or `idempotency_key` returns that run instead of a new one.
        """
        params, body, headers = _execute_request(
            parameters, mode, execution_id, idempotency_key, wait
        )
        return self._json(
            "POST",
            _path("projects", project, "jobs", job, "execute"),
            params=params,
            json=body,
            headers=headers,
            timeout=self._wait_timeout(wait),
        )

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return self._json("GET", _path("executions", execution_id))

    def list_executions(
        self,
        project: str,
        job: str | None = None,
        status: str | list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page, newest first: `{"items": [...], "nextCursor": ...}`."""
        params = _query(job=job, status=_statuses(status), limit=limit, cursor=cursor)
        path = _path("projects", project, "executions")
        return self._json("GET", path, params=params)

    def cancel(self, execution_id: str) -> dict[str, Any]:
        """Ask the run to stop; the answer is `cancelling` (running) or `cancelled` (queued)."""
        path = _path("executions", execution_id, "cancel")
        return self._json("POST", path)

    def result(self, execution_id: str, no_schema: bool = False) -> Any:
        params = {"noSchema": "true"} if no_schema else None
        return self._json("GET", _path("executions", execution_id, "result"), params=params)

    def logs(self, execution_id: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Log lines after seq `after`: `{items, nextAfter, status, finished}`."""
        path = _path("executions", execution_id, "logs")
        return self._json("GET", path, params={"after": after, "limit": limit})

    def follow_logs(self, execution_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """Log lines as the run writes them, until it ends; resumes a dropped connection."""
        path = _path("executions", execution_id, "logs")
        failures = 0
        while True:
            try:
                with self._http.sse(
                    path,
                    params={"follow": "true", "after": after},
                    headers=_resume_headers(after),
                    timeout=self._stream_timeout(),
                ) as source:
                    if source.response.is_error:
                        source.response.read()
                        raise _error_from(source.response)
                    for event in source:
                        if event.event == "end":
                            return
                        line = _log_event(event)
                        if line is not None:
                            after, failures = int(line["seq"]), 0
                            yield line
                failures += 1  # closed without its `end` event: a proxy or the network cut it
                if failures > _RECONNECTS:
                    raise self._dropped(path)
            except httpx2.RequestError as exc:
                failures += 1
                if failures > _RECONNECTS:
                    raise self._unreachable(exc) from exc
            time.sleep(_backoff(failures))

    def wait(self, execution_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The execution once it has ended, or as it is when `timeout` seconds have passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            execution = self.get_execution(execution_id)
            if execution["status"] in FINAL_STATUSES:
                return execution
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return execution
                pause = min(delay, remaining)
            time.sleep(pause)
            delay = min(delay * 1.5, 1.0)

    # schedules

    def list_schedules(self, project: str, job: str) -> list[dict[str, Any]]:
        return self._json("GET", _schedules_path(project, job))["items"]

    def get_schedule(self, project: str, job: str, name: str) -> dict[str, Any]:
        return self._json("GET", _schedules_path(project, job, name))

    def put_schedule(
        self, project: str, job: str, name: str, schedule: dict[str, Any]
    ) -> dict[str, Any]:
        """Add the schedule or update it (same id, fire history kept)."""
        return self._json("PUT", _schedules_path(project, job, name), json=schedule)

    def delete_schedule(self, project: str, job: str, name: str) -> None:
        self._request("DELETE", _schedules_path(project, job, name))

    def preview_schedule(
        self, project: str, job: str, name: str, count: int = 10, start: str | None = None
    ) -> list[dict[str, Any]]:
        """The next `count` fire times after `start` (ISO date-time; default now)."""
        params = _query(count=count, **{"from": start})
        path = _schedules_path(project, job, name, "preview")
        return self._json("GET", path, params=params)["fires"]

    def schedule_fires(
        self, project: str, job: str, name: str, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the schedule's fires, newest first: `{"items", "nextCursor"}`."""
        path = _schedules_path(project, job, name, "fires")
        return self._json("GET", path, params=_query(limit=limit, cursor=cursor))

    def trigger_schedule(self, project: str, job: str, name: str) -> dict[str, Any]:
        """Run the schedule now: `{"fire", "execution"}`."""
        return self._json("POST", _schedules_path(project, job, name, "trigger"))

    def backfill_schedule(
        self, project: str, job: str, name: str, start: str, end: str
    ) -> list[dict[str, Any]]:
        """Fire each fire time in [start, end] that has not fired; returns the new fires."""
        path = _schedules_path(project, job, name, "backfill")
        return self._json("POST", path, json={"from": start, "to": end})["fires"]


# -- async -------------------------------------------------------------------------------------


class AsyncClient(_Base):
    """The asyncio twin of `Client`: the same methods, awaited."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30,
        transport: httpx2.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(url, timeout, headers)
        self._http = httpx2.AsyncClient(
            base_url=self.url, timeout=timeout, transport=transport, headers=self._headers
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        try:
            response = await self._http.request(
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                timeout=httpx2.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx2.RequestError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise _error_from(response)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._request(method, path, **kwargs)).json()

    async def _collect(
        self, path: str, params: dict[str, Any], page_size: int
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": page_size, **_query(cursor=cursor)}
            page = await self._json("GET", path, params=query)
            items.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    # projects

    async def list_projects(self) -> list[dict[str, Any]]:
        return await self._collect(_path("projects"), {}, _PAGE_SIZE)

    async def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        body = {"name": name, "description": description}
        return await self._json("POST", _path("projects"), json=body)

    async def get_project(self, ref: str) -> dict[str, Any]:
        return await self._json("GET", _path("projects", ref))

    async def delete_project(self, ref: str) -> None:
        await self._request("DELETE", _path("projects", ref))

    async def ensure_project(self, name: str, description: str = "") -> dict[str, Any]:
        """The project named `name`, created (with `description`) if it does not exist."""
        try:
            return await self.get_project(name)
        except NotFound as exc:
            if exc.code != "project_not_found":
                raise
        try:
            return await self.create_project(name, description)
        except Conflict:
            return await self.get_project(name)

    # jobs

    async def list_jobs(
        self,
        project: str,
        q: str | None = None,
        label: str | None = None,
        sort: str = "name",
        *,
        page_size: int = _PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Every job of the project that matches, following the pages to the end."""
        params = _query(q=q, label=label, sort=sort)
        return await self._collect(_path("projects", project, "jobs"), params, page_size)

    async def get_job(self, project: str, job: str) -> dict[str, Any]:
        return await self._json("GET", _path("projects", project, "jobs", job))

    async def create_job(self, project: str, definition: dict[str, Any]) -> dict[str, Any]:
        path = _path("projects", project, "jobs")
        return await self._json("POST", path, json=definition)

    async def patch_job(self, project: str, job: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the given top-level fields of the job's definition."""
        path = _path("projects", project, "jobs", job)
        return await self._json("PATCH", path, json=changes)

    async def delete_job(self, project: str, job: str) -> None:
        await self._request("DELETE", _path("projects", project, "jobs", job))

    async def apply_job(
        self, project: str, definition: dict[str, Any]
    ) -> tuple[Verdict, dict[str, Any]]:
        """Make the job named in `definition` match it: create it, update it, or leave it."""
        name, body, valid = _apply_target(definition)
        if name is None:
            return "created", await self.create_job(project, body)
        try:
            current = await self.get_job(project, name)
        except NotFound as exc:
            if exc.code != "job_not_found":
                raise
            return "created", await self.create_job(project, body)
        if valid and definition_of(current) == body:
            return "unchanged", current
        return "updated", await self.patch_job(project, name, body)

    # executions

    async def execute(
        self,
        project: str,
        job: str,
        parameters: dict[str, Any] | None = None,
        mode: str = "full",
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        wait: float | None = None,
    ) -> dict[str, Any]:
        """Start a run; with `wait`, the server answers when it ends or after `wait` seconds."""
        params, body, headers = _execute_request(
            parameters, mode, execution_id, idempotency_key, wait
        )
        return await self._json(
            "POST",
            _path("projects", project, "jobs", job, "execute"),
            params=params,
            json=body,
            headers=headers,
            timeout=self._wait_timeout(wait),
        )

    async def get_execution(self, execution_id: str) -> dict[str, Any]:
        return await self._json("GET", _path("executions", execution_id))

    async def list_executions(
        self,
        project: str,
        job: str | None = None,
        status: str | list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page, newest first: `{"items": [...], "nextCursor": ...}`."""
        params = _query(job=job, status=_statuses(status), limit=limit, cursor=cursor)
        path = _path("projects", project, "executions")
        return await self._json("GET", path, params=params)

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        """Ask the run to stop; the answer is `cancelling` (running) or `cancelled` (queued)."""
        return await self._json("POST", _path("executions", execution_id, "cancel"))

    async def result(self, execution_id: str, no_schema: bool = False) -> Any:
        params = {"noSchema": "true"} if no_schema else None
        return await self._json("GET", _path("executions", execution_id, "result"), params=params)

    async def logs(self, execution_id: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Log lines after seq `after`: `{items, nextAfter, status, finished}`."""
        path = _path("executions", execution_id, "logs")
        return await self._json("GET", path, params={"after": after, "limit": limit})

    async def follow_logs(self, execution_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Log lines as the run writes them, until it ends; resumes a dropped connection."""
        path = _path("executions", execution_id, "logs")
        failures = 0
        while True:
            try:
                async with self._http.sse(
                    path,
                    params={"follow": "true", "after": after},
                    headers=_resume_headers(after),
                    timeout=self._stream_timeout(),
                ) as source:
                    if source.response.is_error:
                        await source.response.aread()
                        raise _error_from(source.response)
                    async for event in source:
                        if event.event == "end":
                            return
                        line = _log_event(event)
                        if line is not None:
                            after, failures = int(line["seq"]), 0
                            yield line
                failures += 1
                if failures > _RECONNECTS:
                    raise self._dropped(path)
            except httpx2.RequestError as exc:
                failures += 1
                if failures > _RECONNECTS:
                    raise self._unreachable(exc) from exc
            await asyncio.sleep(_backoff(failures))

    async def wait(self, execution_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The execution once it has ended, or as it is when `timeout` seconds have passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            execution = await self.get_execution(execution_id)
            if execution["status"] in FINAL_STATUSES:
                return execution
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return execution
                pause = min(delay, remaining)
            await asyncio.sleep(pause)
            delay = min(delay * 1.5, 1.0)

    # schedules

    async def list_schedules(self, project: str, job: str) -> list[dict[str, Any]]:
        return (await self._json("GET", _schedules_path(project, job)))["items"]

    async def get_schedule(self, project: str, job: str, name: str) -> dict[str, Any]:
        return await self._json("GET", _schedules_path(project, job, name))

    async def put_schedule(
        self, project: str, job: str, name: str, schedule: dict[str, Any]
    ) -> dict[str, Any]:
        """Add the schedule or update it (same id, fire history kept)."""
        return await self._json("PUT", _schedules_path(project, job, name), json=schedule)

    async def delete_schedule(self, project: str, job: str, name: str) -> None:
        await self._request("DELETE", _schedules_path(project, job, name))

    async def preview_schedule(
        self, project: str, job: str, name: str, count: int = 10, start: str | None = None
    ) -> list[dict[str, Any]]:
        """The next `count` fire times after `start` (ISO date-time; default now)."""
        params = _query(count=count, **{"from": start})
        path = _schedules_path(project, job, name, "preview")
        return (await self._json("GET", path, params=params))["fires"]

    async def schedule_fires(
        self, project: str, job: str, name: str, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the schedule's fires, newest first: `{"items", "nextCursor"}`."""
        path = _schedules_path(project, job, name, "fires")
        return await self._json("GET", path, params=_query(limit=limit, cursor=cursor))

    async def trigger_schedule(self, project: str, job: str, name: str) -> dict[str, Any]:
        """Run the schedule now: `{"fire", "execution"}`."""
        return await self._json("POST", _schedules_path(project, job, name, "trigger"))

    async def backfill_schedule(
        self, project: str, job: str, name: str, start: str, end: str
    ) -> list[dict[str, Any]]:
        """Fire each fire time in [start, end] that has not fired; returns the new fires."""
        path = _schedules_path(project, job, name, "backfill")
        body = {"from": start, "to": end}
        return (await self._json("POST", path, json=body))["fires"]
