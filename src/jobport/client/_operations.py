"""The operations of the API, written once for `Client` and `AsyncClient`.

Over 400 lines, and one cohesive thing: one thin method for each operation of the API, the
same for both clients. A method shapes its request (with _common.py) and hands it to the
client's `_call`, which sends it and decodes the answer: `Client._call` returns the answer,
`AsyncClient._call` an awaitable of it, so a method returns `R`, one or the other
(`Operations[Any, ...]`, `Operations[Awaitable[Any], ...]`; redis-py does the same with its
ResponseT). An operation of several requests or pauses (following pages, `apply_job`,
`ensure_project`, `wait`) is a plan, a generator written once here, that the client's
`_drive` runs: blocking, or awaiting each step. What is left in _sync.py and _async.py is
what really differs: the transport, the driver, the pause, and following a log stream.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

import httpx2

from jobport.client import _common as common
from jobport.client._auth import TOKEN_PATH, token_form
from jobport.client._common import Base, TransportT, Verdict
from jobport.domain.executions import FINAL_STATUSES
from jobport.errors import Conflict, NotFound

# What an operation returns: the decoded answer (Client) or an awaitable of it (AsyncClient).
R = TypeVar("R")
T = TypeVar("T")

# A plan yields what the client's own methods return (an answer, or an awaitable of one, or
# of a pause) and is sent back the answer; a step that failed is raised at its `yield`.
Plan = Generator[Any, Any, T]
Decode = Callable[[httpx2.Response], Any]


def json_answer(response: httpx2.Response) -> Any:
    return response.json()


def no_answer(response: httpx2.Response) -> None:
    return None


def items_of(response: httpx2.Response) -> Any:
    return response.json()["items"]


def fires_of(response: httpx2.Response) -> Any:
    return response.json()["fires"]


class Operations(Base[TransportT], Generic[R, TransportT]):
    """Every API operation, once; the client subclass says how a request is sent."""

    def _call(self, method: str, path: str, *, decode: Decode = json_answer, **request: Any) -> R:
        """Send the request (`_request`'s keywords) and return `decode` of its answer."""
        raise NotImplementedError

    def _drive(self, plan: Plan[Any]) -> R:
        """Run the plan to its end and return what it returns."""
        raise NotImplementedError

    def _sleep(self, seconds: float) -> R:
        raise NotImplementedError

    def _collect(self, path: str, params: dict[str, Any], page_size: int) -> R:
        """The items of every page, following `nextCursor` to the end."""
        return self._drive(self._pages(path, params, page_size))

    def _pages(
        self, path: str, params: dict[str, Any], page_size: int
    ) -> Plan[list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": page_size, **common.query(cursor=cursor)}
            page = yield self._call("GET", path, params=query)
            items.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    # identity and access

    def me(self) -> R:
        """Who these credentials are: type, id, roles and effective scopes by level."""
        return self._call("GET", common.path("me"))

    def token(self, client_id: str, client_secret: str, scope: str | None = None) -> R:
        """An OAuth2 access token for a key: `{access_token, token_type, expires_in, scope}`.

        Sent without this client's own credentials. `scope` (space-separated) asks for
        fewer scopes than the key holds.
        """
        form = token_form(client_id, client_secret, scope)
        return self._call("POST", TOKEN_PATH, data=form, anonymous=True)

    def postman_collection(self) -> R:
        """The API as a Postman collection (v2.1), aimed at this server, with Loome's
        variables (baseUrl, clientId, clientSecret, jobId) and a pre-request script that
        gets and keeps the token. Public, like the OpenAPI document: sent without
        credentials."""
        return self._call("GET", common.path("postman.json"), anonymous=True)

    def list_keys(self, *, page_size: int = common.PAGE_SIZE) -> R:
        """Every API key (never their secrets), newest first."""
        return self._collect(common.path("keys"), {}, page_size)

    def create_key(
        self,
        description: str = "",
        expires_at: dt.datetime | str | None = common.OMITTED,
        firewall_rules: list[dict[str, Any]] | None = None,
        roles: list[dict[str, Any]] | None = None,
    ) -> R:
        """A new key; the answer's `key` (and `clientSecret`) is shown this once.

        `expires_at` left out: the server's default (90 days); None: never. `roles`, as
        `[{"role": "Operator", "project": "sales"}]` (project None: every project), are given
        to it in the same call (the caller needs `roles:write` there too); a missing role
        makes no key. Later: `add_role_member`.
        """
        body = common.key_create(description, expires_at, firewall_rules, roles)
        return self._call("POST", common.path("keys"), json=body)

    def get_key(self, client_id: str) -> R:
        return self._call("GET", common.path("keys", client_id))

    def update_key(self, client_id: str, *, force: bool = False, **changes: Any) -> R:
        """Change `description`, `expires_at`, `firewall_rules` or `enabled`.

        The server refuses (409 `would_lock_out`) an edit that would shut out the key this
        client calls with; `force=True` makes it anyway.
        """
        body = common.key_changes(changes, force)
        return self._call("PATCH", common.path("keys", client_id), json=body)

    def delete_key(self, client_id: str) -> R:
        return self._call("DELETE", common.path("keys", client_id), decode=no_answer)

    def rotate_key(
        self, client_id: str, old_secret_valid_until: dt.datetime | str | None = None
    ) -> R:
        """A new secret, in the answer's `key` (shown this once).

        The old secret keeps working until `old_secret_valid_until`; by default for the
        server's overlap (24 h), so that its users can move to the new one.
        """
        body = common.query(oldSecretValidUntil=common.stamp(old_secret_valid_until))
        return self._call("POST", common.path("keys", client_id, "rotate"), json=body)

    def add_current_address(self, client_id: str, name: str | None = None) -> R:
        """Add a firewall rule for the address the server sees this request come from."""
        path = common.path("keys", client_id, "firewall-rules", "current-address")
        return self._call("POST", path, json=common.query(name=name))

    def list_roles(self, project: str | None = None) -> R:
        """Application roles (with the built-ins), or a project's roles."""
        return self._call("GET", common.roles_path(project), decode=items_of)

    def create_role(
        self, name: str, scopes: list[str], description: str = "", project: str | None = None
    ) -> R:
        body = {"name": name, "description": description, "scopes": scopes}
        return self._call("POST", common.roles_path(project), json=body)

    def get_role(self, role: str, project: str | None = None) -> R:
        return self._call("GET", common.roles_path(project, role))

    def update_role(self, role: str, project: str | None = None, **changes: Any) -> R:
        """Change a role's `name`, `description` or `scopes` (built-in roles stay as they are)."""
        body = common.role_changes(changes)
        return self._call("PATCH", common.roles_path(project, role), json=body)

    def delete_role(self, role: str, project: str | None = None) -> R:
        return self._call("DELETE", common.roles_path(project, role), decode=no_answer)

    def add_role_member(self, role: str, type: str, id: str, project: str | None = None) -> R:
        """Give the role to a member: `type` is `apiKey` (id: client id) or `user` (username)."""
        body = {"type": type, "id": id}
        return self._call("POST", common.roles_path(project, role, "members"), json=body)

    def remove_role_member(self, role: str, type: str, id: str, project: str | None = None) -> R:
        path = common.roles_path(project, role, "members", type, id)
        return self._call("DELETE", path, decode=no_answer)

    def list_users(self) -> R:
        """The console users (never their passwords), by name, with their roles."""
        return self._call("GET", common.path("users"), decode=items_of)

    def create_user(
        self, username: str, password: str, roles: list[dict[str, Any]] | None = None
    ) -> R:
        """A console user with a password (8 characters at least) and, in the same call,
        `roles` as for `create_key`."""
        body = common.user_create(username, password, roles)
        return self._call("POST", common.path("users"), json=body)

    def set_password(self, username: str, password: str) -> R:
        """Set a user's password (8 characters at least)."""
        path = common.path("users", username, "password")
        return self._call("PUT", path, json={"password": password}, decode=no_answer)

    def audit(
        self,
        principal: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        target: str | None = None,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> R:
        """One page of the audit log, newest first: `{"items": [...], "nextCursor": ...}`.

        `principal` like `apiKey:<clientId>` or `user:<name>`; `action` a route name such as
        `execute_job` or `create_key`; `outcome` ok, denied or failed; `target` path contains.
        """
        query = common.audit_query(principal, action, outcome, target, since, until, limit, cursor)
        return self._call("GET", common.path("audit"), params=query)

    # projects

    def list_projects(self) -> R:
        return self._collect(common.path("projects"), {}, common.PAGE_SIZE)

    def create_project(self, name: str, description: str = "") -> R:
        body = {"name": name, "description": description}
        return self._call("POST", common.path("projects"), json=body)

    def get_project(self, ref: str) -> R:
        return self._call("GET", common.path("projects", ref))

    def delete_project(self, ref: str) -> R:
        return self._call("DELETE", common.path("projects", ref), decode=no_answer)

    def ensure_project(self, name: str, description: str = "") -> R:
        """The project named `name`, created (with `description`) if it does not exist."""
        return self._drive(self._ensure_project(name, description))

    def _ensure_project(self, name: str, description: str) -> Plan[dict[str, Any]]:
        try:
            return (yield self.get_project(name))
        except NotFound as exc:
            if exc.code != "project_not_found":
                raise
        try:
            return (yield self.create_project(name, description))
        except Conflict:  # created by someone else in the meantime
            return (yield self.get_project(name))

    # jobs

    def list_jobs(
        self,
        project: str,
        q: str | None = None,
        label: str | None = None,
        sort: str = "name",
        *,
        page_size: int = common.PAGE_SIZE,
    ) -> R:
        """Every job of the project that matches, following the pages to the end."""
        params = common.query(q=q, label=label, sort=sort)
        return self._collect(common.path("projects", project, "jobs"), params, page_size)

    def get_job(self, project: str, job: str) -> R:
        return self._call("GET", common.path("projects", project, "jobs", job))

    def create_job(self, project: str, definition: dict[str, Any]) -> R:
        path = common.path("projects", project, "jobs")
        return self._call("POST", path, json=definition)

    def patch_job(self, project: str, job: str, changes: dict[str, Any]) -> R:
        """Replace the given top-level fields of the job's definition."""
        path = common.path("projects", project, "jobs", job)
        return self._call("PATCH", path, json=changes)

    def delete_job(self, project: str, job: str) -> R:
        path = common.path("projects", project, "jobs", job)
        return self._call("DELETE", path, decode=no_answer)

    def apply_job(self, project: str, definition: dict[str, Any]) -> R:
        """Make the job named in `definition` match it: create it, update it, or leave it.

        Returns `(verdict, job)`, the verdict `created`, `updated` or `unchanged`. Fields
        the definition leaves out go back to their defaults. Applying the same definition
        twice changes nothing the second time (no request but the GET).
        """
        return self._drive(self._apply_job(project, definition))

    def _apply_job(
        self, project: str, definition: dict[str, Any]
    ) -> Plan[tuple[Verdict, dict[str, Any]]]:
        name, body, valid = common.apply_target(definition)
        if name is None:  # let the server say what is wrong
            return "created", (yield self.create_job(project, body))
        try:
            current = yield self.get_job(project, name)
        except NotFound as exc:
            if exc.code != "job_not_found":
                raise
            return "created", (yield self.create_job(project, body))
        if valid and common.definition_of(current) == body:
            return "unchanged", current
        return "updated", (yield self.patch_job(project, name, body))

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
        context: dict[str, Any] | None = None,
        foreach: dict[str, Any] | None = None,
    ) -> R:
        """Start a run; with `wait`, the server answers when it ends or after `wait` seconds.

        A known `execution_id` or `idempotency_key` returns that run instead of a new one.
        `context` is the template context (`{{ context.x }}`, over the job's own); for a
        foreach job, `foreach` may give this run's `query` and/or `source`.
        """
        params, body, headers = common.execute_request(
            parameters, mode, execution_id, idempotency_key, wait, context, foreach
        )
        return self._call(
            "POST",
            common.path("projects", project, "jobs", job, "execute"),
            params=params,
            json=body,
            headers=headers,
            timeout=self._wait_timeout(wait),
        )

    def get_execution(self, execution_id: str) -> R:
        return self._call("GET", common.path("executions", execution_id))

    def list_executions(
        self,
        project: str,
        job: str | None = None,
        status: str | list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> R:
        """One page, newest first: `{"items": [...], "nextCursor": ...}`."""
        params = common.query(job=job, status=common.statuses(status), limit=limit, cursor=cursor)
        path = common.path("projects", project, "executions")
        return self._call("GET", path, params=params)

    def cancel(self, execution_id: str) -> R:
        """Ask the run to stop; the answer is `cancelling` (running) or `cancelled` (queued)."""
        return self._call("POST", common.path("executions", execution_id, "cancel"))

    def result(self, execution_id: str, no_schema: bool = False) -> R:
        params = {"noSchema": "true"} if no_schema else None
        path = common.path("executions", execution_id, "result")
        return self._call("GET", path, params=params)

    def logs(
        self, execution_id: str, after: int = 0, limit: int = 1000, iteration: int | None = None
    ) -> R:
        """Log lines after seq `after`: `{items, nextAfter, status, finished, logsPruned}`;
        with `iteration`, only that foreach item's. `logsPruned` is true when retention
        removed the run's lines (the run stays): `items` is then empty, not a silent run."""
        path = common.path("executions", execution_id, "logs")
        params = common.query(after=after, limit=limit, iteration=iteration)
        return self._call("GET", path, params=params)

    def items(
        self, execution_id: str, after: int = -1, limit: int = 100, status: str | None = None
    ) -> R:
        """A foreach run's items after index `after`: `{items, nextAfter}` (None at the end);
        each `{index, item, status, attempts, startedAt, finishedAt, error}`."""
        path = common.path("executions", execution_id, "items")
        return self._call("GET", path, params=common.query(after=after, limit=limit, status=status))

    def wait(self, execution_id: str, timeout: float | None = None) -> R:
        """The execution once it has ended, or as it is when `timeout` seconds have passed."""
        return self._drive(self._wait(execution_id, timeout))

    def _wait(self, execution_id: str, timeout: float | None) -> Plan[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            execution = yield self.get_execution(execution_id)
            if execution["status"] in FINAL_STATUSES:
                return execution
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return execution
                pause = min(delay, remaining)
            yield self._sleep(pause)
            delay = min(delay * 1.5, 1.0)

    # schedules

    def list_schedules(self, project: str, job: str) -> R:
        return self._call("GET", common.schedules_path(project, job), decode=items_of)

    def get_schedule(self, project: str, job: str, name: str) -> R:
        return self._call("GET", common.schedules_path(project, job, name))

    def put_schedule(self, project: str, job: str, name: str, schedule: dict[str, Any]) -> R:
        """Add the schedule or update it (same id, fire history kept)."""
        return self._call("PUT", common.schedules_path(project, job, name), json=schedule)

    def delete_schedule(self, project: str, job: str, name: str) -> R:
        path = common.schedules_path(project, job, name)
        return self._call("DELETE", path, decode=no_answer)

    def preview_schedule(
        self, project: str, job: str, name: str, count: int = 10, start: str | None = None
    ) -> R:
        """The next `count` fire times after `start` (ISO date-time; default now)."""
        params = common.query(count=count, **{"from": start})
        path = common.schedules_path(project, job, name, "preview")
        return self._call("GET", path, params=params, decode=fires_of)

    def schedule_fires(
        self, project: str, job: str, name: str, limit: int = 50, cursor: str | None = None
    ) -> R:
        """One page of the schedule's fires, newest first: `{"items", "nextCursor"}`."""
        path = common.schedules_path(project, job, name, "fires")
        return self._call("GET", path, params=common.query(limit=limit, cursor=cursor))

    def trigger_schedule(self, project: str, job: str, name: str) -> R:
        """Run the schedule now: `{"fire", "execution"}`."""
        return self._call("POST", common.schedules_path(project, job, name, "trigger"))

    def backfill_schedule(self, project: str, job: str, name: str, start: str, end: str) -> R:
        """Fire each fire time in [start, end] that has not fired; returns the new fires."""
        path = common.schedules_path(project, job, name, "backfill")
        return self._call("POST", path, json={"from": start, "to": end}, decode=fires_of)

    # connections

    def list_connections(self, project: str, *, page_size: int = common.PAGE_SIZE) -> R:
        """Every connection of the project, by name, following the pages to the end.

        A connection shows its URL with the password masked (`***`) and its headers by name,
        their values masked: its secrets never leave the server.
        """
        return self._collect(common.connections_path(project), {}, page_size)

    def get_connection(self, project: str, connection: str) -> R:
        """One connection, by name or id."""
        return self._call("GET", common.connections_path(project, connection))

    def create_connection(
        self,
        project: str,
        name: str,
        url: str,
        description: str = "",
        headers: dict[str, str] | None = None,
    ) -> R:
        """A new connection: a SQLAlchemy database URL (`postgresql://user:pw@host/db`,
        `sqlite:///path.db`, `mysql+pymysql://...`) or an http(s) base URL, with `headers`
        sent on every request to it. The password and header values are stored encrypted."""
        body = common.connection_create(name, url, description, headers)
        return self._call("POST", common.connections_path(project), json=body)

    def update_connection(self, project: str, connection: str, **changes: Any) -> R:
        """Change `name`, `url`, `description` or `headers`.

        A `url` whose password is `***` keeps the stored password (so a URL read back can be
        edited and sent again); `headers` replaces the set, and a header whose value is `***`
        keeps its stored value.
        """
        body = common.connection_changes(changes)
        return self._call("PATCH", common.connections_path(project, connection), json=body)

    def delete_connection(self, project: str, connection: str) -> R:
        path = common.connections_path(project, connection)
        return self._call("DELETE", path, decode=no_answer)

    def test_connection(self, project: str, connection: str) -> R:
        """Probe the connection from the server: `{ok, kind, elapsedMs, message}`; `ok` false
        says why it failed (an answer, not an error: the probe itself ran)."""
        return self._call("POST", common.connections_path(project, connection, "test"))
