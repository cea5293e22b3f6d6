"""`AsyncClient`: the asyncio twin of `Client`, the same methods awaited.

Over 400 lines, and one cohesive thing: it mirrors _sync.py method for method (a test holds
them to it); the request shaping both use is in _common.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from jobport.client import _common as common
from jobport.client._auth import TOKEN_PATH, token_form
from jobport.client._common import Base, Verdict
from jobport.client._errors import Conflict, NotFound, error_from
from jobport.domain.executions import FINAL_STATUSES


class AsyncClient(Base):
    """The asyncio twin of `Client`: the same methods, awaited.

    Credentials (see the package docstring for the order): `key` an API key string;
    `client_id` + `client_secret` OAuth2 client credentials, with `scope` to ask for fewer
    scopes than the key holds; `token` an access token; `anonymous=True` none at all, and
    none looked for. `transport` is the httpx2 transport to send with, as in httpx2 (for
    instance an app in this process: `jobport.client.InProcessTransport`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token: str | None = None,
        scope: str | None = None,
        timeout: float = 30,
        transport: httpx2.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> None:
        credentials = {
            "key": key,
            "client_id": client_id,
            "client_secret": client_secret,
            "token": token,
            "scope": scope,
            "anonymous": anonymous,
        }
        super().__init__(url, timeout, headers, credentials)
        self._http = httpx2.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers=self._headers,
            auth=self._auth,
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
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        anonymous: bool = False,
    ) -> httpx2.Response:
        try:
            response = await self._http.request(
                method,
                path,
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=httpx2.USE_CLIENT_DEFAULT if timeout is None else timeout,
                auth=None if anonymous else httpx2.USE_CLIENT_DEFAULT,
            )
        except httpx2.RequestError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise error_from(response)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._request(method, path, **kwargs)).json()

    async def _collect(
        self, path: str, params: dict[str, Any], page_size: int
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": page_size, **common.query(cursor=cursor)}
            page = await self._json("GET", path, params=query)
            items.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    # identity and access

    async def me(self) -> dict[str, Any]:
        """Who these credentials are: type, id, roles and effective scopes by level."""
        return await self._json("GET", common.path("me"))

    async def token(
        self, client_id: str, client_secret: str, scope: str | None = None
    ) -> dict[str, Any]:
        """An OAuth2 access token for a key: `{access_token, token_type, expires_in, scope}`.

        Sent without this client's own credentials. `scope` (space-separated) asks for
        fewer scopes than the key holds.
        """
        form = token_form(client_id, client_secret, scope)
        return await self._json("POST", TOKEN_PATH, data=form, anonymous=True)

    async def list_keys(self, *, page_size: int = common.PAGE_SIZE) -> list[dict[str, Any]]:
        """Every API key (never their secrets), newest first."""
        return await self._collect(common.path("keys"), {}, page_size)

    async def create_key(
        self,
        description: str = "",
        expires_at: dt.datetime | str | None = common.OMITTED,
        firewall_rules: list[dict[str, Any]] | None = None,
        roles: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A new key; the answer's `key` (and `clientSecret`) is shown this once.

        `expires_at` left out: the server's default (90 days); None: never. `roles`, as
        `[{"role": "Operator", "project": "sales"}]` (project None: every project), are given
        to it in the same call (the caller needs `roles:write` there too); a missing role
        makes no key. Later: `add_role_member`.
        """
        body = common.key_create(description, expires_at, firewall_rules, roles)
        return await self._json("POST", common.path("keys"), json=body)

    async def get_key(self, client_id: str) -> dict[str, Any]:
        return await self._json("GET", common.path("keys", client_id))

    async def update_key(
        self, client_id: str, *, force: bool = False, **changes: Any
    ) -> dict[str, Any]:
        """Change `description`, `expires_at`, `firewall_rules` or `enabled`.

        The server refuses (409 `would_lock_out`) an edit that would shut out the key this
        client calls with; `force=True` makes it anyway.
        """
        body = common.key_changes(changes, force)
        return await self._json("PATCH", common.path("keys", client_id), json=body)

    async def delete_key(self, client_id: str) -> None:
        await self._request("DELETE", common.path("keys", client_id))

    async def rotate_key(
        self, client_id: str, old_secret_valid_until: dt.datetime | str | None = None
    ) -> dict[str, Any]:
        """A new secret, in the answer's `key` (shown this once).

        The old secret keeps working until `old_secret_valid_until`; by default for the
        server's overlap (24 h), so that its users can move to the new one.
        """
        body = common.query(oldSecretValidUntil=common.stamp(old_secret_valid_until))
        return await self._json("POST", common.path("keys", client_id, "rotate"), json=body)

    async def add_current_address(self, client_id: str, name: str | None = None) -> dict[str, Any]:
        """Add a firewall rule for the address the server sees this request come from."""
        path = common.path("keys", client_id, "firewall-rules", "current-address")
        return await self._json("POST", path, json=common.query(name=name))

    async def list_roles(self, project: str | None = None) -> list[dict[str, Any]]:
        """Application roles (with the built-ins), or a project's roles."""
        return (await self._json("GET", common.roles_path(project)))["items"]

    async def create_role(
        self, name: str, scopes: list[str], description: str = "", project: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "description": description, "scopes": scopes}
        return await self._json("POST", common.roles_path(project), json=body)

    async def get_role(self, role: str, project: str | None = None) -> dict[str, Any]:
        return await self._json("GET", common.roles_path(project, role))

    async def update_role(
        self, role: str, project: str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change a role's `name`, `description` or `scopes` (built-in roles stay as they are)."""
        body = common.role_changes(changes)
        return await self._json("PATCH", common.roles_path(project, role), json=body)

    async def delete_role(self, role: str, project: str | None = None) -> None:
        await self._request("DELETE", common.roles_path(project, role))

    async def add_role_member(
        self, role: str, type: str, id: str, project: str | None = None
    ) -> dict[str, Any]:
        """Give the role to a member: `type` is `apiKey` (id: client id) or `user` (username)."""
        body = {"type": type, "id": id}
        return await self._json("POST", common.roles_path(project, role, "members"), json=body)

    async def remove_role_member(
        self, role: str, type: str, id: str, project: str | None = None
    ) -> None:
        await self._request("DELETE", common.roles_path(project, role, "members", type, id))

    async def list_users(self) -> list[dict[str, Any]]:
        """The console users (never their passwords), by name, with their roles."""
        return (await self._json("GET", common.path("users")))["items"]

    async def create_user(
        self, username: str, password: str, roles: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A console user with a password (8 characters at least) and, in the same call,
        `roles` as for `create_key`."""
        body = common.user_create(username, password, roles)
        return await self._json("POST", common.path("users"), json=body)

    async def set_password(self, username: str, password: str) -> None:
        """Set a user's password (8 characters at least)."""
        path = common.path("users", username, "password")
        await self._request("PUT", path, json={"password": password})

    async def audit(
        self,
        principal: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        target: str | None = None,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the audit log, newest first: `{"items": [...], "nextCursor": ...}`.

        `principal` like `apiKey:<clientId>` or `user:<name>`; `action` a route name such as
        `execute_job` or `create_key`; `outcome` ok, denied or failed; `target` path contains.
        """
        query = common.audit_query(principal, action, outcome, target, since, until, limit, cursor)
        return await self._json("GET", common.path("audit"), params=query)

    # projects

    async def list_projects(self) -> list[dict[str, Any]]:
        return await self._collect(common.path("projects"), {}, common.PAGE_SIZE)

    async def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        body = {"name": name, "description": description}
        return await self._json("POST", common.path("projects"), json=body)

    async def get_project(self, ref: str) -> dict[str, Any]:
        return await self._json("GET", common.path("projects", ref))

    async def delete_project(self, ref: str) -> None:
        await self._request("DELETE", common.path("projects", ref))

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
        page_size: int = common.PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Every job of the project that matches, following the pages to the end."""
        params = common.query(q=q, label=label, sort=sort)
        return await self._collect(common.path("projects", project, "jobs"), params, page_size)

    async def get_job(self, project: str, job: str) -> dict[str, Any]:
        return await self._json("GET", common.path("projects", project, "jobs", job))

    async def create_job(self, project: str, definition: dict[str, Any]) -> dict[str, Any]:
        path = common.path("projects", project, "jobs")
        return await self._json("POST", path, json=definition)

    async def patch_job(self, project: str, job: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the given top-level fields of the job's definition."""
        path = common.path("projects", project, "jobs", job)
        return await self._json("PATCH", path, json=changes)

    async def delete_job(self, project: str, job: str) -> None:
        await self._request("DELETE", common.path("projects", project, "jobs", job))

    async def apply_job(
        self, project: str, definition: dict[str, Any]
    ) -> tuple[Verdict, dict[str, Any]]:
        """Make the job named in `definition` match it: create it, update it, or leave it."""
        name, body, valid = common.apply_target(definition)
        if name is None:
            return "created", await self.create_job(project, body)
        try:
            current = await self.get_job(project, name)
        except NotFound as exc:
            if exc.code != "job_not_found":
                raise
            return "created", await self.create_job(project, body)
        if valid and common.definition_of(current) == body:
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
        params, body, headers = common.execute_request(
            parameters, mode, execution_id, idempotency_key, wait
        )
        return await self._json(
            "POST",
            common.path("projects", project, "jobs", job, "execute"),
            params=params,
            json=body,
            headers=headers,
            timeout=self._wait_timeout(wait),
        )

    async def get_execution(self, execution_id: str) -> dict[str, Any]:
        return await self._json("GET", common.path("executions", execution_id))

    async def list_executions(
        self,
        project: str,
        job: str | None = None,
        status: str | list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page, newest first: `{"items": [...], "nextCursor": ...}`."""
        params = common.query(job=job, status=common.statuses(status), limit=limit, cursor=cursor)
        path = common.path("projects", project, "executions")
        return await self._json("GET", path, params=params)

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        """Ask the run to stop; the answer is `cancelling` (running) or `cancelled` (queued)."""
        return await self._json("POST", common.path("executions", execution_id, "cancel"))

    async def result(self, execution_id: str, no_schema: bool = False) -> Any:
        params = {"noSchema": "true"} if no_schema else None
        path = common.path("executions", execution_id, "result")
        return await self._json("GET", path, params=params)

    async def logs(self, execution_id: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Log lines after seq `after`: `{items, nextAfter, status, finished}`."""
        path = common.path("executions", execution_id, "logs")
        return await self._json("GET", path, params={"after": after, "limit": limit})

    async def follow_logs(self, execution_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Log lines as the run writes them, until it ends; resumes a dropped connection."""
        path = common.path("executions", execution_id, "logs")
        failures = 0
        while True:
            try:
                async with self._http.sse(
                    path,
                    params={"follow": "true", "after": after},
                    headers=common.resume_headers(after),
                    timeout=self._stream_timeout(),
                ) as source:
                    if source.response.is_error:
                        await source.response.aread()
                        raise error_from(source.response)
                    async for event in source:
                        if event.event == "end":
                            return
                        line = common.log_event(event)
                        if line is not None:
                            after, failures = int(line["seq"]), 0
                            yield line
                failures += 1
                if failures > common._RECONNECTS:
                    raise self._dropped(path)
            except httpx2.RequestError as exc:
                failures += 1
                if failures > common._RECONNECTS:
                    raise self._unreachable(exc) from exc
            await asyncio.sleep(common._backoff(failures))

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
        return (await self._json("GET", common.schedules_path(project, job)))["items"]

    async def get_schedule(self, project: str, job: str, name: str) -> dict[str, Any]:
        return await self._json("GET", common.schedules_path(project, job, name))

    async def put_schedule(
        self, project: str, job: str, name: str, schedule: dict[str, Any]
    ) -> dict[str, Any]:
        """Add the schedule or update it (same id, fire history kept)."""
        return await self._json("PUT", common.schedules_path(project, job, name), json=schedule)

    async def delete_schedule(self, project: str, job: str, name: str) -> None:
        await self._request("DELETE", common.schedules_path(project, job, name))

    async def preview_schedule(
        self, project: str, job: str, name: str, count: int = 10, start: str | None = None
    ) -> list[dict[str, Any]]:
        """The next `count` fire times after `start` (ISO date-time; default now)."""
        params = common.query(count=count, **{"from": start})
        path = common.schedules_path(project, job, name, "preview")
        return (await self._json("GET", path, params=params))["fires"]

    async def schedule_fires(
        self, project: str, job: str, name: str, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the schedule's fires, newest first: `{"items", "nextCursor"}`."""
        path = common.schedules_path(project, job, name, "fires")
        return await self._json("GET", path, params=common.query(limit=limit, cursor=cursor))

    async def trigger_schedule(self, project: str, job: str, name: str) -> dict[str, Any]:
        """Run the schedule now: `{"fire", "execution"}`."""
        return await self._json("POST", common.schedules_path(project, job, name, "trigger"))

    async def backfill_schedule(
        self, project: str, job: str, name: str, start: str, end: str
    ) -> list[dict[str, Any]]:
        """Fire each fire time in [start, end] that has not fired; returns the new fires."""
        path = common.schedules_path(project, job, name, "backfill")
        body = {"from": start, "to": end}
        return (await self._json("POST", path, json=body))["fires"]
