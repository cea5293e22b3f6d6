"""What every console page shares: templates, the signed-in viewer, CSRF, HTML errors.

The console is a face like the API: its routes call the same services, which check the same
rights (a hidden button is never the protection: `authorization.authorize` is). A viewer is
a console user with a session cookie (`api/auth.SESSION_COOKIE`, made by the login page or
`POST /api/v1/session`). Every unsafe request carries the session's CSRF token: forms as the
hidden field `csrf` (`{{ csrf_field() }}`), htmx requests as the `X-CSRF-Token` header
(set once on `<body hx-headers>`); without it the request is refused (403 `csrf_failed`)
before the route runs.

Errors under `/console/` are pages (`api/errors.face`): 401 sends the browser to the login
page, 403 and 404 say why in the API's own words; a form's field errors are shown next to
the field by the route that re-renders its form (`form_errors`).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response

from jobport import __version__
from jobport.api import errors
from jobport.api.auth import CSRF_HEADER, SESSION_COOKIE, address_of
from jobport.domain.access import Identity, Principal
from jobport.errors import Forbidden, JobportError, Unauthenticated
from jobport.services.access import authentication, authorization
from jobport.services.runtime import Runtime

PREFIX = "/console"
HERE = Path(__file__).resolve().parent
_SAFE = {"GET", "HEAD", "OPTIONS"}

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: Any) -> str:
    """A time for people: ISO text or a datetime, in UTC with a `<time>` for local time."""
    if not value:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


env.filters["when"] = _when
env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str)
env.globals["version"] = __version__
env.globals["prefix"] = PREFIX


class LoginNeeded(Exception):
    """No console session: the page sends the browser to the login page."""


@dataclass
class Viewer:
    """Who looks at a page: the session's principal, what it may do, its CSRF token."""

    rt: Runtime
    principal: Principal
    csrf_token: str
    identity: Identity | None = field(default=None, repr=False)

    def can(self, scope: str, project_id: str | None = None) -> bool:
        """Whether an action may be shown: the service checks it again when it is done."""
        return self.principal.allows(scope, project_id)

    def can_somewhere(self, scope: str) -> bool:
        ids = self.principal.project_ids(scope)
        return ids is None or bool(ids)

    def authorize(self, scope: str, project_ref: str | None) -> str | None:
        """Forbidden (a 403 page) unless the viewer holds `scope` there."""
        return authorization.authorize(self.rt, self.principal, scope, project_ref)


async def viewer(request: Request) -> Viewer:
    """The signed-in console user (a route dependency); unsafe methods must carry the
    session's CSRF token, in the `csrf` form field or the X-CSRF-Token header."""
    rt: Runtime = request.app.state.runtime
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginNeeded()
    unsafe = request.method not in _SAFE
    csrf = request.headers.get(CSRF_HEADER)
    if unsafe and not csrf:
        kind = request.headers.get("content-type", "")
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf")
            csrf = value if isinstance(value, str) else None
    try:
        principal = authentication.authenticate_session(
            rt, token, address_of(request), unsafe=unsafe, csrf=csrf
        )
    except Unauthenticated:
        raise LoginNeeded() from None
    request.state.principal = principal  # the audit trail names the user
    return Viewer(rt, principal, str(principal.extra.get("csrf_token") or ""))


# The route table (api/auth.declared_scope) says what a console route needs: a session; the
# page checks each scope through the services, as the API does.
viewer.jobport_scope = "console: a signed-in user; each scope is checked as in the API"  # type: ignore[attr-defined]


def page(
    request: Request,
    template: str,
    who: Viewer | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or, for an htmx request, whatever the template renders) as HTML."""
    csrf = who.csrf_token if who else ""

    def csrf_field() -> Any:
        from markupsafe import Markup

        return Markup(f'<input type="hidden" name="csrf" value="{Markup.escape(csrf)}">')

    html = env.get_template(template).render(
        request=request,
        viewer=who,
        csrf_token=csrf,
        csrf_field=csrf_field,
        htmx=request.headers.get("hx-request") == "true",
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def form_errors(exc: JobportError) -> dict[str, str]:
    """The API's own words for each field a refusal names (`details`), and `_` for the
    message as a whole: shown next to the fields."""
    found: dict[str, str] = {"_": exc.message}
    if isinstance(exc.details, list):
        for detail in exc.details:
            if isinstance(detail, dict) and detail.get("field"):
                found.setdefault(str(detail["field"]), str(detail.get("reason", "")))
    return found


def redirect(url: str, request: Request | None = None) -> Response:
    """Go to `url` after a form: a 303 for a browser, HX-Redirect for htmx."""
    if request is not None and request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def login_url(next_path: str | None) -> str:
    if next_path and next_path.startswith(PREFIX) and not next_path.startswith("//"):
        return f"{PREFIX}/login?next={urllib.parse.quote(next_path, safe='/')}"
    return f"{PREFIX}/login"


def _shape(refusal: errors.Refusal) -> Response:
    """Errors under /console/ as pages: a missing session goes to the login page."""
    if refusal.status == 401:
        return RedirectResponse(login_url(refusal.path), status_code=303)
    title = {403: "Not allowed", 404: "Not found"}.get(refusal.status, "Something went wrong")
    html = env.get_template("error.html").render(
        viewer=None,
        title=title,
        status=refusal.status,
        code=refusal.code,
        message=refusal.message,
        prefix=PREFIX,
        path=refusal.path,
    )
    return HTMLResponse(html, status_code=refusal.status)


errors.face((PREFIX + "/", PREFIX), _shape)


async def login_needed(request: Request, exc: LoginNeeded) -> Response:
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": login_url(request.url.path)})
    return RedirectResponse(login_url(request.url.path), status_code=303)


__all__ = [
    "PREFIX",
    "Forbidden",
    "LoginNeeded",
    "Viewer",
    "form_errors",
    "login_needed",
    "page",
    "redirect",
    "viewer",
]
