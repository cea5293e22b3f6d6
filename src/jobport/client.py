"""Python SDK for the jobport REST API: `Client` and `AsyncClient`, method for method.

    from jobport.client import Client

    with Client("http://127.0.0.1:8080", key="jpk_...") as jp:  # default: $JOBPORT_URL
        jp.ensure_project("reports")
        jp.apply_job("reports", {"name": "hello", "steps": [
            {"name": "greet", "kind": "command", "config": {"command": "echo hi"}}]})
        run = jp.execute("reports", "hello", wait=60)
        print(run["status"], run["result"])

Credentials, the first that is given wins: `key=` (an API key, sent as a Bearer token),
`client_id=` + `client_secret=` (OAuth2 client credentials: the client fetches an access
token from /connect/token, keeps it until shortly before it expires, and fetches a new one
once if the server answers 401), or `token=` (an access token you got yourself); then the
environment: `JOBPORT_KEY`, then `JOBPORT_CLIENT_ID` + `JOBPORT_CLIENT_SECRET`; then the
profile `jobport login` wrote (used only for the URL it was written for).

Every method returns the server's JSON (camelCase dicts) and raises one of:

    jobport.errors.JobportError     root of every error jobport raises on purpose
     ├── APIError                   the server answered with an error status; carries
     │    │                         .status .code .message .details .response
     │    ├── BadRequest            400  e.g. invalid_json
     │    ├── Unauthenticated       401  missing_credentials, invalid_credentials, key_expired,
     │    │                              key_revoked (also importable as Unauthorized)
     │    ├── Forbidden             403  insufficient_scope, project_forbidden, ip_not_allowed
     │    ├── NotFound              404  project_not_found, job_not_found, execution_not_found
     │    ├── Conflict              409  already_running, already_finished, executions_active
     │    ├── PayloadTooLarge       413
     │    ├── ValidationFailed      422  invalid_job, unknown_parameter (.details names fields)
     │    ├── RateLimited           429  rate_limited; .retry_after (seconds)
     │    └── ServerError           5xx
     └── TransportError             no answer: refused, timed out, dropped (.url)

These are wire errors. The server's domain exceptions in `jobport.errors` (`Invalid`,
`NotFound`, ...) share the root but never reach a client as themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx2

from jobport import __version__
from jobport.domain.executions import FINAL_STATUSES
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
    "Unauthenticated",
    "Unauthorized",
    "ValidationFailed",
    "Verdict",
    "definition_of",
    "load_profile",
    "profile_path",
    "remove_profile",
    "save_profile",
]

DEFAULT_URL = "http://127.0.0.1:8080"

Verdict = Literal["created", "updated", "unchanged"]

# Fields of a job that the server owns; the rest is the definition a user wrote.
_SERVER_FIELDS = frozenset(
    {"id", "projectId", "createdAt", "updatedAt", "lastExecution", "schedules"}
)
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


class Unauthenticated(APIError):
    """401: no credential, or one the server refused (`code` says why)."""


Unauthorized = Unauthenticated  # the name before access control landed


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
    401: Unauthenticated,
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
        # The token endpoint says `invalid_client` (RFC 6749) and, in `reason`, which of ours.
        code = body["reason"] if isinstance(body.get("reason"), str) else body["error"]
        message = str(body.get("message") or body.get("error_description") or code)
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


# -- credentials -------------------------------------------------------------------------------

TOKEN_PATH = "/connect/token"
# A cached token is replaced this long before it expires (at most a tenth of its lifetime),
# so that a request never leaves with a token that dies on the way.
_REFRESH_MARGIN = 60.0
_USER_AGENT = f"jobport-python/{__version__}"
_PROFILE_FIELDS = ("url", "client_id", "client_secret")


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    return url if "://" in url else f"http://{url}"


def profile_path() -> Path:
    """Where `jobport login` keeps its profile: `$JOBPORT_CONFIG_DIR` or ~/.config/jobport."""
    folder = os.environ.get("JOBPORT_CONFIG_DIR")
    return (Path(folder) if folder else Path.home() / ".config" / "jobport") / "profile.json"


def load_profile() -> dict[str, str] | None:
    """The saved profile `{"url", "client_id", "client_secret"}`, or None when there is none."""
    path = profile_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the jobport profile {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data[k] for k in _PROFILE_FIELDS
    ):
        raise ValueError(f"the jobport profile {path} is damaged; run `jobport login` again")
    return {k: data[k] for k in _PROFILE_FIELDS}


def save_profile(url: str, client_id: str, client_secret: str) -> Path:
    """Write the profile, readable by its owner only (0600, in a 0700 folder); its path."""
    path = profile_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps(
        {"url": _base_url(url), "client_id": client_id, "client_secret": client_secret}, indent=2
    )
    # Written beside it and renamed over it: no reader ever sees half a profile, and the
    # secret is never in a file with wider permissions, not even for a moment.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file left by a crash
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def remove_profile() -> Path | None:
    """Delete the profile; its path, or None if there was none."""
    path = profile_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path


def _token_form(client_id: str, client_secret: str, scope: str | None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if scope:
        form["scope"] = scope
    return form


class _Bearer(httpx2.Auth):
    """A fixed credential: an API key string or an access token."""

    def __init__(self, value: str) -> None:
        self._header = f"Bearer {value}"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class _ClientCredentials(httpx2.Auth):
    """OAuth2 client credentials: one access token, reused until shortly before it expires.

    The token is fetched inside the auth flow, so every request (log streams too) carries a
    live one. A 401 on a token that was not fetched for this very request (the server's
    signing key changed, a token revoked early) costs one new token and one retry.
    """

    def __init__(
        self, token_url: str, client_id: str, client_secret: str, scope: str | None
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._form = _token_form(client_id, client_secret, scope)
        self._token: str | None = None
        self._refresh_at = 0.0  # time.monotonic() after which the token is not used again

    def _token_request(self, request: httpx2.Request) -> httpx2.Request:
        return httpx2.Request(
            "POST",
            self.token_url,
            data=self._form,
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
            extensions={k: v for k, v in request.extensions.items() if k == "timeout"},
        )

    def _keep(self, answer: httpx2.Response) -> None:
        if answer.is_error:
            raise _error_from(answer)
        body = answer.json()
        lifetime = float(body.get("expires_in") or 0)
        self._token = str(body["access_token"])
        self._refresh_at = time.monotonic() + lifetime - min(_REFRESH_MARGIN, lifetime / 10)

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        fetched = False
        if self._token is None or time.monotonic() >= self._refresh_at:
            self._keep((yield self._token_request(request)))
            fetched = True
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and not fetched:
            self._keep((yield self._token_request(request)))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    # Only the token answers are read here: reading every answer would buffer a log stream.

    def sync_auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        flow = self.auth_flow(request)
        sent = next(flow)
        while True:
            response = yield sent
            if sent is not request:
                response.read()
            try:
                sent = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self.auth_flow(request)
        sent = next(flow)
        while True:
            response = yield sent
            if sent is not request:
                await response.aread()
            try:
                sent = flow.send(response)
            except StopIteration:
                return


def _resolve(
    url: str | None,
    headers: dict[str, str] | None,
    key: str | None,
    client_id: str | None,
    client_secret: str | None,
    token: str | None,
    scope: str | None,
) -> tuple[str, httpx2.Auth | None]:
    """The server URL and how to authenticate to it: arguments, environment, then profile."""
    given = [n for n, v in (("key", key), ("client_id", client_id), ("token", token)) if v]
    if len(given) > 1:
        raise ValueError(f"give one credential, not {' and '.join(given)}")
    url = url or os.environ.get("JOBPORT_URL") or None
    if given or client_secret:
        pass
    elif any(h.lower() == "authorization" for h in headers or {}):
        return _base_url(url or DEFAULT_URL), None  # the caller brings its own
    elif os.environ.get("JOBPORT_KEY"):
        key = os.environ["JOBPORT_KEY"]
    elif os.environ.get("JOBPORT_CLIENT_ID") or os.environ.get("JOBPORT_CLIENT_SECRET"):
        client_id = os.environ.get("JOBPORT_CLIENT_ID")
        client_secret = os.environ.get("JOBPORT_CLIENT_SECRET")
    elif (profile := load_profile()) is not None and (
        url is None or _base_url(url) == profile["url"]
    ):
        # A profile's secret goes only to the server it was made for.
        url, client_id, client_secret = (
            profile["url"],
            profile["client_id"],
            profile["client_secret"],
        )
    base = _base_url(url or DEFAULT_URL)
    if key:
        return base, _Bearer(key)
    if token:
        return base, _Bearer(token)
    if client_id or client_secret:
        if not (client_id and client_secret):
            raise ValueError("client credentials need both a client id and a client secret")
        return base, _ClientCredentials(base + TOKEN_PATH, client_id, client_secret, scope)
    return base, None


def _stamp(value: dt.datetime | str | None) -> str | None:
    """A date-time for the wire (ISO 8601); the server reads one without a zone as UTC."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


class _Omitted:
    def __repr__(self) -> str:
        return "<omitted>"


_OMITTED: Any = _Omitted()
_KEY_FIELDS = {
    "description": "description",
    "expires_at": "expiresAt",
    "firewall_rules": "firewallRules",
    "enabled": "enabled",
}
_ROLE_FIELDS = ("name", "description", "scopes")


def _key_changes(changes: dict[str, Any], force: bool) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(_KEY_FIELDS))
    if unknown:
        raise TypeError(f"update_key() cannot change {unknown}; it changes {list(_KEY_FIELDS)}")
    body = {_KEY_FIELDS[k]: _stamp(v) if k == "expires_at" else v for k, v in changes.items()}
    if force:
        body["force"] = True
    return body


def _role_changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(_ROLE_FIELDS))
    if unknown:
        raise TypeError(f"update_role() cannot change {unknown}; it changes {list(_ROLE_FIELDS)}")
    return changes


def _roles_path(project: str | None, *rest: str) -> str:
    if project is None:
        return _path("roles", *rest)
    return _path("projects", project, "roles", *rest)


def _audit_query(
    principal: str | None,
    action: str | None,
    outcome: str | None,
    target: str | None,
    since: dt.datetime | str | None,
    until: dt.datetime | str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    return _query(
        principal=principal,
        action=action,
        outcome=outcome,
        target=target,
        since=_stamp(since),
        until=_stamp(until),
        limit=limit,
        cursor=cursor,
    )


class _Base:
    def __init__(
        self,
        url: str | None,
        timeout: float,
        headers: dict[str, str] | None,
        credentials: dict[str, str | None],
    ) -> None:
        self.url, self._auth = _resolve(url, headers, **credentials)
        self.timeout = timeout
        self._headers = {"User-Agent": _USER_AGENT, **(headers or {})}

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
    """A blocking client of one jobport server. Use it as a context manager, or `close()` it.

    Credentials (see the module docstring for the order): `key` an API key string;
    `client_id` + `client_secret` OAuth2 client credentials, with `scope` to ask for fewer
    scopes than the key holds; `token` an access token.
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
        transport: httpx2.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        credentials = {
            "key": key,
            "client_id": client_id,
            "client_secret": client_secret,
            "token": token,
            "scope": scope,
        }
        super().__init__(url, timeout, headers, credentials)
        self._http = httpx2.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers=self._headers,
            auth=self._auth,
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
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        anonymous: bool = False,
    ) -> httpx2.Response:
        try:
            response = self._http.request(
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

    # identity and access

    def me(self) -> dict[str, Any]:
        """Who these credentials are: type, id, roles and effective scopes by level."""
        return self._json("GET", _path("me"))

    def token(self, client_id: str, client_secret: str, scope: str | None = None) -> dict[str, Any]:
        """An OAuth2 access token for a key: `{access_token, token_type, expires_in, scope}`.

        Sent without this client's own credentials. `scope` (space-separated) asks for
        fewer scopes than the key holds.
        """
        form = _token_form(client_id, client_secret, scope)
        return self._json("POST", TOKEN_PATH, data=form, anonymous=True)

    def list_keys(self, *, page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """Every API key (never their secrets), newest first."""
        return self._collect(_path("keys"), {}, page_size)

    def create_key(
        self,
        description: str = "",
        expires_at: dt.datetime | str | None = _OMITTED,
        firewall_rules: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A new key; the answer's `key` (and `clientSecret`) is shown this once.

        `expires_at` left out: the server's default (90 days); None: never.
        A key holds no role until one is given to it (`add_role_member`).
        """
        body: dict[str, Any] = {"description": description, "firewallRules": firewall_rules or []}
        if expires_at is not _OMITTED:
            body["expiresAt"] = _stamp(expires_at)
        return self._json("POST", _path("keys"), json=body)

    def get_key(self, client_id: str) -> dict[str, Any]:
        return self._json("GET", _path("keys", client_id))

    def update_key(self, client_id: str, *, force: bool = False, **changes: Any) -> dict[str, Any]:
        """Change `description`, `expires_at`, `firewall_rules` or `enabled`.

        The server refuses (409 `would_lock_out`) an edit that would shut out the key this
        client calls with; `force=True` makes it anyway.
        """
        body = _key_changes(changes, force)
        return self._json("PATCH", _path("keys", client_id), json=body)

    def delete_key(self, client_id: str) -> None:
        self._request("DELETE", _path("keys", client_id))

    def rotate_key(
        self, client_id: str, old_secret_valid_until: dt.datetime | str | None = None
    ) -> dict[str, Any]:
        """A new secret, in the answer's `key` (shown this once).

        The old secret keeps working until `old_secret_valid_until`; by default for the
        server's overlap (24 h), so that its users can move to the new one.
        """
        body = _query(oldSecretValidUntil=_stamp(old_secret_valid_until))
        return self._json("POST", _path("keys", client_id, "rotate"), json=body)

    def add_current_address(self, client_id: str, name: str | None = None) -> dict[str, Any]:
        """Add a firewall rule for the address the server sees this request come from."""
        path = _path("keys", client_id, "firewall-rules", "current-address")
        return self._json("POST", path, json=_query(name=name))

    def list_roles(self, project: str | None = None) -> list[dict[str, Any]]:
        """Application roles (with the built-ins), or a project's roles."""
        return self._json("GET", _roles_path(project))["items"]

    def create_role(
        self, name: str, scopes: list[str], description: str = "", project: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "description": description, "scopes": scopes}
        return self._json("POST", _roles_path(project), json=body)

    def get_role(self, role: str, project: str | None = None) -> dict[str, Any]:
        return self._json("GET", _roles_path(project, role))

    def update_role(self, role: str, project: str | None = None, **changes: Any) -> dict[str, Any]:
        """Change a role's `name`, `description` or `scopes` (built-in roles stay as they are)."""
        return self._json("PATCH", _roles_path(project, role), json=_role_changes(changes))

    def delete_role(self, role: str, project: str | None = None) -> None:
        self._request("DELETE", _roles_path(project, role))

    def add_role_member(
        self, role: str, type: str, id: str, project: str | None = None
    ) -> dict[str, Any]:
        """Give the role to a member: `type` is `apiKey` (id: client id) or `user` (username)."""
        body = {"type": type, "id": id}
        return self._json("POST", _roles_path(project, role, "members"), json=body)

    def remove_role_member(self, role: str, type: str, id: str, project: str | None = None) -> None:
        self._request("DELETE", _roles_path(project, role, "members", type, id))

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
    ) -> dict[str, Any]:
        """One page of the audit log, newest first: `{"items": [...], "nextCursor": ...}`.

        `principal` like `apiKey:<clientId>` or `user:<name>`; `action` a route name such as
        `execute_job` or `create_key`; `outcome` ok, denied or failed; `target` path contains.
        """
        query = _audit_query(principal, action, outcome, target, since, until, limit, cursor)
        return self._json("GET", _path("audit"), params=query)

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
    """The asyncio twin of `Client`: the same methods, awaited.

    Credentials (see the module docstring for the order): `key` an API key string;
    `client_id` + `client_secret` OAuth2 client credentials, with `scope` to ask for fewer
    scopes than the key holds; `token` an access token.
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
    ) -> None:
        credentials = {
            "key": key,
            "client_id": client_id,
            "client_secret": client_secret,
            "token": token,
            "scope": scope,
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

    # identity and access

    async def me(self) -> dict[str, Any]:
        """Who these credentials are: type, id, roles and effective scopes by level."""
        return await self._json("GET", _path("me"))

    async def token(
        self, client_id: str, client_secret: str, scope: str | None = None
    ) -> dict[str, Any]:
        """An OAuth2 access token for a key: `{access_token, token_type, expires_in, scope}`.

        Sent without this client's own credentials. `scope` (space-separated) asks for
        fewer scopes than the key holds.
        """
        form = _token_form(client_id, client_secret, scope)
        return await self._json("POST", TOKEN_PATH, data=form, anonymous=True)

    async def list_keys(self, *, page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """Every API key (never their secrets), newest first."""
        return await self._collect(_path("keys"), {}, page_size)

    async def create_key(
        self,
        description: str = "",
        expires_at: dt.datetime | str | None = _OMITTED,
        firewall_rules: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A new key; the answer's `key` (and `clientSecret`) is shown this once.

        `expires_at` left out: the server's default (90 days); None: never.
        A key holds no role until one is given to it (`add_role_member`).
        """
        body: dict[str, Any] = {"description": description, "firewallRules": firewall_rules or []}
        if expires_at is not _OMITTED:
            body["expiresAt"] = _stamp(expires_at)
        return await self._json("POST", _path("keys"), json=body)

    async def get_key(self, client_id: str) -> dict[str, Any]:
        return await self._json("GET", _path("keys", client_id))

    async def update_key(
        self, client_id: str, *, force: bool = False, **changes: Any
    ) -> dict[str, Any]:
        """Change `description`, `expires_at`, `firewall_rules` or `enabled`.

        The server refuses (409 `would_lock_out`) an edit that would shut out the key this
        client calls with; `force=True` makes it anyway.
        """
        body = _key_changes(changes, force)
        return await self._json("PATCH", _path("keys", client_id), json=body)

    async def delete_key(self, client_id: str) -> None:
        await self._request("DELETE", _path("keys", client_id))

    async def rotate_key(
        self, client_id: str, old_secret_valid_until: dt.datetime | str | None = None
    ) -> dict[str, Any]:
        """A new secret, in the answer's `key` (shown this once).

        The old secret keeps working until `old_secret_valid_until`; by default for the
        server's overlap (24 h), so that its users can move to the new one.
        """
        body = _query(oldSecretValidUntil=_stamp(old_secret_valid_until))
        return await self._json("POST", _path("keys", client_id, "rotate"), json=body)

    async def add_current_address(self, client_id: str, name: str | None = None) -> dict[str, Any]:
        """Add a firewall rule for the address the server sees this request come from."""
        path = _path("keys", client_id, "firewall-rules", "current-address")
        return await self._json("POST", path, json=_query(name=name))

    async def list_roles(self, project: str | None = None) -> list[dict[str, Any]]:
        """Application roles (with the built-ins), or a project's roles."""
        return (await self._json("GET", _roles_path(project)))["items"]

    async def create_role(
        self, name: str, scopes: list[str], description: str = "", project: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "description": description, "scopes": scopes}
        return await self._json("POST", _roles_path(project), json=body)

    async def get_role(self, role: str, project: str | None = None) -> dict[str, Any]:
        return await self._json("GET", _roles_path(project, role))

    async def update_role(
        self, role: str, project: str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change a role's `name`, `description` or `scopes` (built-in roles stay as they are)."""
        return await self._json("PATCH", _roles_path(project, role), json=_role_changes(changes))

    async def delete_role(self, role: str, project: str | None = None) -> None:
        await self._request("DELETE", _roles_path(project, role))

    async def add_role_member(
        self, role: str, type: str, id: str, project: str | None = None
    ) -> dict[str, Any]:
        """Give the role to a member: `type` is `apiKey` (id: client id) or `user` (username)."""
        body = {"type": type, "id": id}
        return await self._json("POST", _roles_path(project, role, "members"), json=body)

    async def remove_role_member(
        self, role: str, type: str, id: str, project: str | None = None
    ) -> None:
        await self._request("DELETE", _roles_path(project, role, "members", type, id))

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
        query = _audit_query(principal, action, outcome, target, since, until, limit, cursor)
        return await self._json("GET", _path("audit"), params=query)

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
