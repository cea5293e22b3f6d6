"""What `Client` and `AsyncClient` share: paths, queries and bodies, and their common base.

Both clients build every request with these functions and differ only in how they send it
(blocking or awaited), so that the two stay the same method for method.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal
from urllib.parse import quote

import httpx2

from jobport.client._auth import USER_AGENT, resolve
from jobport.errors import TransportError

Verdict = Literal["created", "updated", "unchanged"]

# Fields of a job that the server owns; the rest is the definition a user wrote.
_SERVER_FIELDS = frozenset(
    {"id", "projectId", "createdAt", "updatedAt", "lastExecution", "schedules"}
)
PAGE_SIZE = 200
_RECONNECTS = 5
# A followed log stream is silent while a step is; the server sends a keep-alive every 15 s.
_STREAM_READ_TIMEOUT = 60.0


def path(*parts: str) -> str:
    """An API v1 path; names may hold spaces and dots, so every segment is quoted whole."""
    return "/api/v1/" + "/".join(quote(str(p), safe="") for p in parts)


def query(**values: Any) -> dict[str, Any]:
    """The given query values, without those left as None."""
    return {k: v for k, v in values.items() if v is not None}


def execute_request(
    parameters: dict[str, Any] | None,
    mode: str,
    execution_id: str | None,
    idempotency_key: str | None,
    wait: float | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(query, body, headers) of an execute."""
    body: dict[str, Any] = {"parameters": parameters or {}, "mode": mode}
    if execution_id is not None:
        body["executionId"] = execution_id
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return query(wait=wait), body, headers


def schedules_path(project: str, job: str, *rest: str) -> str:
    return path("projects", project, "jobs", job, "schedules", *rest)


def roles_path(project: str | None, *rest: str) -> str:
    if project is None:
        return path("roles", *rest)
    return path("projects", project, "roles", *rest)


def statuses(status: str | list[str] | None) -> str | None:
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


def apply_target(definition: dict[str, Any]) -> tuple[str | None, dict[str, Any], bool]:
    """(the job's name, the body to send, whether it is valid) of a definition to apply."""
    if not isinstance(definition, dict):
        raise TypeError(f"a job definition is a mapping, not {type(definition).__name__}")
    body, valid = _complete(definition)
    name = definition.get("name")
    return (name if isinstance(name, str) and name else None), body, valid


def log_event(event: httpx2.ServerSentEvent) -> dict[str, Any] | None:
    """A log line from a `log` event; None for anything else."""
    if event.event != "log":
        return None
    line: dict[str, Any] = json.loads(event.data)
    return line


def resume_headers(after: int) -> dict[str, str]:
    return {"Last-Event-ID": str(after)} if after else {}


def _backoff(failures: int) -> float:
    return float(min(0.2 * 2 ** (failures - 1), 5.0))


def stamp(value: dt.datetime | str | None) -> str | None:
    """A date-time for the wire (ISO 8601); the server reads one without a zone as UTC."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


class _Omitted:
    def __repr__(self) -> str:
        return "<omitted>"


OMITTED: Any = _Omitted()
_KEY_FIELDS = {
    "description": "description",
    "expires_at": "expiresAt",
    "firewall_rules": "firewallRules",
    "enabled": "enabled",
}
_ROLE_FIELDS = ("name", "description", "scopes")


def key_create(
    description: str,
    expires_at: dt.datetime | str | None,
    firewall_rules: list[dict[str, Any]] | None,
    roles: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The body of POST /keys; `expires_at` OMITTED leaves the expiry to the server."""
    body: dict[str, Any] = {"description": description, "firewallRules": firewall_rules or []}
    if expires_at is not OMITTED:
        body["expiresAt"] = stamp(expires_at)
    if roles:
        body["roles"] = roles
    return body


def key_changes(changes: dict[str, Any], force: bool) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(_KEY_FIELDS))
    if unknown:
        raise TypeError(f"update_key() cannot change {unknown}; it changes {list(_KEY_FIELDS)}")
    body = {_KEY_FIELDS[k]: stamp(v) if k == "expires_at" else v for k, v in changes.items()}
    if force:
        body["force"] = True
    return body


def role_changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(_ROLE_FIELDS))
    if unknown:
        raise TypeError(f"update_role() cannot change {unknown}; it changes {list(_ROLE_FIELDS)}")
    return changes


def user_create(username: str, password: str, roles: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The body of POST /users."""
    body: dict[str, Any] = {"username": username, "password": password}
    if roles:
        body["roles"] = roles
    return body


def audit_query(
    principal: str | None,
    action: str | None,
    outcome: str | None,
    target: str | None,
    since: dt.datetime | str | None,
    until: dt.datetime | str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    return query(
        principal=principal,
        action=action,
        outcome=outcome,
        target=target,
        since=stamp(since),
        until=stamp(until),
        limit=limit,
        cursor=cursor,
    )


class Base:
    """The state both clients keep: the server's URL, the credential, timeouts, headers."""

    def __init__(
        self,
        url: str | None,
        timeout: float,
        headers: dict[str, str] | None,
        credentials: dict[str, Any],
    ) -> None:
        self.url, self._auth = resolve(url, headers, **credentials)
        self.timeout = timeout
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}

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
