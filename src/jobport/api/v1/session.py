"""v1 session (console login with a cookie) and /me (who am I, with what rights)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response

from jobport.api import openapi
from jobport.api.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    address_of,
    authenticated,
    public,
)
from jobport.api.responses import JSONResponse
from jobport.api.v1 import wire
from jobport.api.v1.keys import render_roles
from jobport.domain.access import Identity, Principal, Session
from jobport.services.access import authentication, authorization
from jobport.services.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["session"])


class Login(wire.Body):
    username: str
    password: str


_LOGIN_EXAMPLES = {
    "admin": openapi.example("Log in as admin", {"username": "admin", "password": "your password"})
}


def render(identity: Identity) -> dict[str, Any]:
    """Who the caller is, with which roles, and the scopes it holds at each level."""
    principal = identity.principal
    token_scopes = principal.token_scopes
    return {
        "type": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "authenticatedBy": principal.via,
        "address": principal.address,
        "roles": render_roles(identity.roles),
        "scopes": identity.scopes,
        "tokenScopes": sorted(token_scopes) if token_scopes is not None else None,
    }


@router.post(
    "/session",
    status_code=201,
    responses={
        # Public, yet it refuses: the walk in api/openapi.py adds these only where a
        # credential is needed.
        401: {"description": "the username or the password is not right"},
        429: {"description": "too many failed logins for this username from this address"},
    },
)
async def login(
    body: Annotated[Login, Body(openapi_examples=_LOGIN_EXAMPLES)],
    request: Request,
    rt: Runtime = Depends(wire.runtime),
    _: None = public("logging in is how a user gets credentials"),
) -> JSONResponse:
    request.state.attempted = f"user:{body.username}"
    # argon2 costs tens of milliseconds on purpose: off the event loop, so a login flood
    # does not stall every other request of this process.
    session = await asyncio.to_thread(
        authentication.login, rt, body.username, body.password, address_of(request)
    )
    principal = authentication.authenticate_session(
        rt, session.token, address_of(request), unsafe=False, csrf=None
    )
    request.state.principal = principal
    response = JSONResponse(
        {
            "username": session.username,
            "csrfToken": session.csrf_token,
            "expiresAt": wire.ts(session.expires_at),
            "me": render(authorization.describe(rt, principal)),
        },
        status_code=201,
    )
    set_session_cookies(response, rt, session, https=request.url.scheme == "https")
    return response


def set_session_cookies(
    response: Response, rt: Runtime, session: Session, *, https: bool = False
) -> None:
    """The session cookie (HttpOnly, SameSite=Strict; Secure when the request came over
    HTTPS or JOBPORT_SECURE_COOKIES says so, for a TLS proxy in front) and the CSRF cookie
    (readable by a page's script, which echoes it in X-CSRF-Token)."""
    max_age = rt.settings.session_lifetime_seconds
    secure = rt.settings.secure_cookies or https
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE, session.csrf_token, max_age=max_age, samesite="strict", secure=secure
    )


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE)


@router.delete("/session", status_code=204)
async def logout(
    request: Request,
    rt: Runtime = Depends(wire.runtime),
    caller: Principal = authenticated(),
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        authentication.logout(rt, token)
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


@router.get("/session")
async def get_session(
    rt: Runtime = Depends(wire.runtime), caller: Principal = authenticated()
) -> dict[str, Any]:
    return {
        "username": caller.name if caller.kind == "user" else None,
        "csrfToken": caller.extra.get("csrf_token"),
        "expiresAt": wire.ts(caller.extra.get("expires_at")),
        "me": render(authorization.describe(rt, caller)),
    }


@router.get("/me")
async def me(
    rt: Runtime = Depends(wire.runtime), caller: Principal = authenticated()
) -> dict[str, Any]:
    return render(authorization.describe(rt, caller))
