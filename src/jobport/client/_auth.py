"""How a client authenticates: a bearer credential, OAuth2 client credentials, the profile.

The order a client looks for credentials in is `resolve()`'s: its arguments, then
`JOBPORT_KEY`, then `JOBPORT_CLIENT_ID` + `JOBPORT_CLIENT_SECRET`, then the profile
`jobport login` wrote (only for the server it was written for).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Generator
from pathlib import Path

import httpx2

from jobport import __version__
from jobport.client._errors import error_from

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_PATH = "/connect/token"
USER_AGENT = f"jobport-python/{__version__}"
# A cached token is replaced this long before it expires (at most a tenth of its lifetime),
# so that a request never leaves with a token that dies on the way.
_REFRESH_MARGIN = 60.0
_PROFILE_FIELDS = ("url", "client_id", "client_secret")


def base_url(url: str) -> str:
    """The URL without a trailing slash, with http:// when it names no scheme."""
    url = url.rstrip("/")
    return url if "://" in url else f"http://{url}"


# -- the profile -------------------------------------------------------------------------------


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
        {"url": base_url(url), "client_id": client_id, "client_secret": client_secret}, indent=2
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


# -- the credentials ---------------------------------------------------------------------------


def token_form(client_id: str, client_secret: str, scope: str | None) -> dict[str, str]:
    """The form of a client-credentials token request."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if scope:
        form["scope"] = scope
    return form


class Bearer(httpx2.Auth):
    """A fixed credential: an API key string or an access token."""

    def __init__(self, value: str) -> None:
        self._header = f"Bearer {value}"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ClientCredentials(httpx2.Auth):
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
        self._form = token_form(client_id, client_secret, scope)
        self._token: str | None = None
        self._refresh_at = 0.0  # time.monotonic() after which the token is not used again

    def _token_request(self, request: httpx2.Request) -> httpx2.Request:
        return httpx2.Request(
            "POST",
            self.token_url,
            data=self._form,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            extensions={k: v for k, v in request.extensions.items() if k == "timeout"},
        )

    def _keep(self, answer: httpx2.Response) -> None:
        if answer.is_error:
            raise error_from(answer)
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


def resolve(
    url: str | None,
    headers: dict[str, str] | None,
    *,
    key: str | None,
    client_id: str | None,
    client_secret: str | None,
    token: str | None,
    scope: str | None,
    anonymous: bool = False,
) -> tuple[str, httpx2.Auth | None]:
    """The server URL and how to authenticate to it: arguments, environment, then profile.

    `anonymous`: no credential at all, none looked for (a server that knows who calls, such
    as the in-process app of `jobport ... --local`).
    """
    given = [n for n, v in (("key", key), ("client_id", client_id), ("token", token)) if v]
    if len(given) > 1:
        raise ValueError(f"give one credential, not {' and '.join(given)}")
    url = url or os.environ.get("JOBPORT_URL") or None
    if anonymous:
        if given or client_secret:
            raise ValueError("an anonymous client takes no credential")
        return base_url(url or DEFAULT_URL), None
    if given or client_secret:
        pass
    elif any(h.lower() == "authorization" for h in headers or {}):
        return base_url(url or DEFAULT_URL), None  # the caller brings its own
    elif os.environ.get("JOBPORT_KEY"):
        key = os.environ["JOBPORT_KEY"]
    elif os.environ.get("JOBPORT_CLIENT_ID") or os.environ.get("JOBPORT_CLIENT_SECRET"):
        client_id = os.environ.get("JOBPORT_CLIENT_ID")
        client_secret = os.environ.get("JOBPORT_CLIENT_SECRET")
    elif (profile := load_profile()) is not None and (
        url is None or base_url(url) == profile["url"]
    ):
        # A profile's secret goes only to the server it was made for.
        url, client_id, client_secret = (
            profile["url"],
            profile["client_id"],
            profile["client_secret"],
        )
    base = base_url(url or DEFAULT_URL)
    if key:
        return base, Bearer(key)
    if token:
        return base, Bearer(token)
    if client_id or client_secret:
        if not (client_id and client_secret):
            raise ValueError("client credentials need both a client id and a client secret")
        return base, ClientCredentials(base + TOKEN_PATH, client_id, client_secret, scope)
    return base, None
