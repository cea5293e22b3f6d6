"""What `Client` and `AsyncClient` share: paths, queries and bodies, and their common base.

Both clients build every request with these functions and differ only in how they send it
(blocking or awaited), so that the two stay the same method for method.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx2

from jobport.client._auth import USER_AGENT, resolve
from jobport.client._errors import error_from
from jobport.errors import TransportError

Verdict = Literal["created", "updated", "unchanged"]
# The transport a client takes: httpx2.BaseTransport (Client) or AsyncBaseTransport.
TransportT = TypeVar("TransportT")

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
    context: dict[str, Any] | None = None,
    foreach: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(query, body, headers) of an execute."""
    body: dict[str, Any] = {"parameters": parameters or {}, "mode": mode}
    if execution_id is not None:
        body["executionId"] = execution_id
    if context is not None:
        body["context"] = context
    if foreach is not None:
        body["foreach"] = foreach
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return query(wait=wait), body, headers


def schedules_path(project: str, job: str, *rest: str) -> str:
    return path("projects", project, "jobs", job, "schedules", *rest)


def roles_path(project: str | None, *rest: str) -> str:
    if project is None:
        return path("roles", *rest)
    return path("projects", project, "roles", *rest)


def connections_path(project: str, *rest: str) -> str:
    return path("projects", project, "connections", *rest)


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


def _backoff(failures: int) -> float:
    return float(min(0.2 * 2 ** (failures - 1), 5.0))


class LogFollow:
    """Following one run's log stream: where to resume, and when to give up.

    Both clients' `follow_logs` open the stream with `request()`, pass each event to
    `line()`, and on a stream that closed before its `end` (`dropped()`) or a request that
    failed (`failed()`) wait the pause it returns and open it again from the last line seen;
    after `_RECONNECTS` failures in a row it raises instead.
    """

    def __init__(self, client: Base[Any], execution_id: str, after: int) -> None:
        self.client = client
        self.path = path("executions", execution_id, "logs")
        self.after = after
        self.failures = 0

    def request(self) -> dict[str, Any]:
        """The keywords of the stream's request: resume after the last line seen."""
        return {
            "params": {"follow": "true", "after": self.after},
            "headers": {"Last-Event-ID": str(self.after)} if self.after else {},
            "timeout": self.client._stream_timeout(),
        }

    def line(self, event: httpx2.ServerSentEvent) -> dict[str, Any] | None:
        """The log line of a `log` event; None for anything else (keep-alives)."""
        if event.event != "log":
            return None
        line: dict[str, Any] = json.loads(event.data)
        self.after, self.failures = int(line["seq"]), 0
        return line

    def dropped(self) -> float:
        """The pause before reopening a stream that closed without its `end` event (a proxy or
        the network cut it)."""
        self.failures += 1
        if self.failures > _RECONNECTS:
            raise self.client._dropped(self.path)
        return _backoff(self.failures)

    def failed(self, exc: httpx2.RequestError) -> float:
        """The pause before reopening after the request failed (call it in the except)."""
        self.failures += 1
        if self.failures > _RECONNECTS:
            raise self.client._unreachable(exc) from exc
        return _backoff(self.failures)


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
_CONNECTION_FIELDS = ("name", "url", "description", "headers")


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


def connection_create(
    name: str, url: str, description: str, headers: dict[str, str] | None
) -> dict[str, Any]:
    """The body of POST .../connections."""
    body: dict[str, Any] = {"name": name, "url": url, "description": description}
    if headers:
        body["headers"] = headers
    return body


def connection_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The body of PATCH .../connections/{connection}: the fields given, as given.

    A url whose password is `***` keeps the stored password; `headers` replaces the set, and a
    header whose value is `***` keeps its stored value.
    """
    unknown = sorted(set(changes) - set(_CONNECTION_FIELDS))
    if unknown:
        raise TypeError(
            f"update_connection() cannot change {unknown}; it changes {list(_CONNECTION_FIELDS)}"
        )
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


class Base(Generic[TransportT]):
    """The state both clients keep: the server's URL, the credential, timeouts, headers, and
    the httpx2 session they send with (`_session`: httpx2.Client or httpx2.AsyncClient)."""

    _session: Callable[..., Any]

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
        transport: TransportT | None = None,
        headers: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> None:
        """A client of the jobport server at `url` (default: $JOBPORT_URL, the profile's, local).

        Credentials (see the package docstring for the order): `key` an API key string;
        `client_id` + `client_secret` OAuth2 client credentials, with `scope` to ask for
        fewer scopes than the key holds; `token` an access token; `anonymous=True` none at
        all, and none looked for. `transport` is the httpx2 transport to send with, as in
        httpx2 (for instance an app in this process: `jobport.client.InProcessTransport`).
        """
        self.url, self._auth = resolve(
            url,
            headers,
            key=key,
            client_id=client_id,
            client_secret=client_secret,
            token=token,
            scope=scope,
            anonymous=anonymous,
        )
        self.timeout = timeout
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._http = self._session(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers=self._headers,
            auth=self._auth,
        )

    def _options(
        self,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """The keywords of `_http.request` for one call (`anonymous`: without credentials)."""
        return {
            "params": params,
            "json": json,
            "data": data,
            "headers": headers,
            "timeout": httpx2.USE_CLIENT_DEFAULT if timeout is None else timeout,
            "auth": None if anonymous else httpx2.USE_CLIENT_DEFAULT,
        }

    @staticmethod
    def _checked(response: httpx2.Response) -> httpx2.Response:
        """The answer, or the error it carries raised (read it first when streamed)."""
        if response.is_error:
            raise error_from(response)
        return response

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
