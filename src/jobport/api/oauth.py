"""OAuth2 client credentials: POST /connect/token (and /oauth/token) for API keys."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request

from jobport.api.auth import address_of, public
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.domain.access import AccessToken
from jobport.errors import Forbidden, Invalid, RateLimited, Unauthenticated
from jobport.services.access import authentication
from jobport.services.runtime import Runtime

router = APIRouter(tags=["oauth"])


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    # RFC 6749 names the fields `error` and `error_description`; `message` is our contract.
    headers = {"Cache-Control": "no-store", **extra.pop("headers", {})}
    body = {"error": code, "error_description": message, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client id, secret) of an `Authorization: Basic` header (RFC 6749, section 2.3.1);
    None for any other header or one that does not decode."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


async def token(
    request: Request,
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[
        str | None,
        Form(
            description="Space-separated scopes the token is narrowed to. None, or `webApi` "
            "(Loome's word for its whole API): the key's own rights."
        ),
    ] = None,
    rt: Runtime = Depends(wire.runtime),
    _: None = public("the token endpoint is where a key gets a token"),
) -> JSONResponse:
    if grant_type != "client_credentials":
        return _error(
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        )
    basic = basic_credentials(request.headers.get("authorization"))
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        return _error(
            401,
            "invalid_client",
            "send client_id and client_secret in the form or as HTTP Basic",
            headers={"WWW-Authenticate": 'Basic realm="jobport"'},
        )
    request.state.attempted = client_id
    try:
        issued = authentication.issue_token(
            rt, client_id, client_secret, scope, address_of(request)
        )
    except Unauthenticated as exc:
        return _error(
            401,
            "invalid_client",
            exc.message,
            reason=exc.code,
            headers={"WWW-Authenticate": 'Basic realm="jobport"'},
        )
    except Forbidden as exc:
        return _error(403, exc.code, exc.message)
    except Invalid as exc:
        return _error(400, "invalid_scope", exc.message)
    except RateLimited as exc:
        return _error(
            429, "rate_limited", exc.message, headers={"Retry-After": str(exc.retry_after)}
        )
    return JSONResponse(render(issued), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def render(issued: AccessToken) -> dict[str, Any]:
    """The token answer of RFC 6749 (section 5.1), in its snake_case."""
    return {
        "access_token": issued.access_token,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }


router.add_api_route("/connect/token", token, methods=["POST"], name="token")
router.add_api_route("/oauth/token", token, methods=["POST"], name="token_alias")
