"""Signing in and out, and the home page (the projects the viewer may see)."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from jobport.api.auth import SESSION_COOKIE, address_of, public
from jobport.api.v1.session import clear_session_cookies, set_session_cookies
from jobport.console.web import PREFIX, Viewer, page, redirect, viewer
from jobport.errors import JobportError
from jobport.services import projects as project_service
from jobport.services.access import authentication

router = APIRouter()


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        parsed = urllib.parse.urlsplit(value)
        if not parsed.scheme and not parsed.netloc:
            return value
    return PREFIX + "/"


def _same_origin(request: Request) -> bool:
    """A login form posted from this site (SameSite cookies guard the rest; a login has
    no session yet, so the Origin header is what tells a cross-site post)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urllib.parse.urlsplit(origin).netloc == host


@router.get(PREFIX + "/login")
async def login_form(
    request: Request, next: str | None = None, _: None = public("the console's login page")
) -> Response:
    return page(request, "login.html", next=_safe_next(next), errors={}, username="")


@router.post(PREFIX + "/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    _: None = public("logging in is how a console user gets a session"),
) -> Response:
    rt = request.app.state.runtime
    target = _safe_next(next)
    if not _same_origin(request):
        errors = {"_": "this form was posted from another site"}
        return page(request, "login.html", status=403, next=target, errors=errors, username="")
    request.state.attempted = f"user:{username}"
    try:
        session = await asyncio.to_thread(
            authentication.login, rt, username, password, address_of(request)
        )
    except JobportError as exc:
        return page(
            request,
            "login.html",
            status=exc.status,
            next=target,
            errors={"_": exc.message},
            username=username,
        )
    response = redirect(target)
    set_session_cookies(response, rt, session, https=request.url.scheme == "https")
    return response


@router.post(PREFIX + "/logout")
async def logout(request: Request, who: Viewer = Depends(viewer)) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        authentication.logout(who.rt, token)
    response = redirect(PREFIX + "/login")
    clear_session_cookies(response)
    return response


@router.get(PREFIX)
@router.get(PREFIX + "/")
async def home(request: Request, who: Viewer = Depends(viewer)) -> Response:
    only = who.principal.project_ids("projects:read")  # None: every project
    found = project_service.list_page(who.rt, cursor=None, limit=500, only=only)
    return page(request, "home.html", who, projects=found.items)


@router.get("/")
async def root(_: None = public("sends a browser to the console")) -> Response:
    return redirect(PREFIX + "/")


@router.get("/login")
async def login_alias(_: None = public("sends a browser to the console's login page")) -> Response:
    return redirect(PREFIX + "/login")
