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
profile `jobport login` wrote (used only for the URL it was written for). `anonymous=True`
sends none and looks for none.

`transport=` is an httpx2 transport, as in httpx2: `httpx2.MockTransport` in tests, or
`InProcessTransport(app)` to talk to an ASGI app in this process (`jobport ... --local`
does that: boot.local_client).

Every method returns the server's JSON (camelCase dicts) and raises the errors of
`jobport.errors`, the very classes the server raises (the tree is drawn there): an error
answer is an `APIError` (`.status`, `.code`, `.message`, `.details`, `.response`) of the
class for its status (`NotFound` for a 404, `Invalid` alias `ValidationFailed` for a 422,
`RateLimited` with `.retry_after`, ...); no answer at all is a `TransportError` (`.url`).

The package: _operations (every operation, written once for both clients), _sync
(`Client`) and _async (`AsyncClient`): how each sends, awaited or not; _common (request
shaping and the state both share), _auth (credentials and the profile), _errors (reading an
error answer into the classes of jobport.errors), _inprocess (`InProcessTransport`).
"""

from __future__ import annotations

from jobport.client._async import AsyncClient
from jobport.client._auth import (
    DEFAULT_URL,
    TOKEN_PATH,
    load_profile,
    profile_path,
    remove_profile,
    save_profile,
)
from jobport.client._common import Verdict, definition_of
from jobport.client._inprocess import InProcessTransport
from jobport.client._sync import Client
from jobport.domain.executions import FINAL_STATUSES
from jobport.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    JobportError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TransportError,
    Unauthenticated,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATUSES",
    "TOKEN_PATH",
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "InProcessTransport",
    "Invalid",
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
