"""/docs (Swagger UI) and /redoc served with their assets from jobport itself.

FastAPI's own pages load Swagger UI and Redoc from a CDN, so on a host without internet they
were blank. The assets come from the fastapi-offline package (its `static/` folder: Swagger
UI's bundle and CSS, Redoc's standalone bundle, a favicon), mounted at `/docs/assets`; the
pages are FastAPI's own `get_swagger_ui_html` / `get_redoc_html` pointed at them. The
Authorize button keeps working: the OAuth2 client-credentials scheme of the OpenAPI document
(`api/auth.py`, token URL `/connect/token`) is what Swagger UI reads, and the redirect page
is served as FastAPI serves it.

Each page also carries a Content-Security-Policy that lets it load and call only this server:
Redoc's sidebar shows a logo from Redocly's CDN and Swagger UI asks an online validator for a
badge (turned off here); with the policy, neither is even tried, online or not.

The routes are plain Starlette routes, as FastAPI adds its own docs routes: they are not API
operations, so they are neither in the OpenAPI document nor in the access rules' route table.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS = "/docs"
REDOC = "/redoc"
ASSETS = DOCS + "/assets"
ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

# Inline: FastAPI's pages start Swagger UI with an inline script, and both viewers style
# themselves with inline styles; Redoc's search runs in a worker made from a blob.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


def _own_only(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = POLICY
    return response


def install(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and /redoc; `app` is built with `docs_url=None`
    and `redoc_url=None`, so FastAPI adds no CDN-backed pages of its own."""
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or DOCS + "/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        parameters = {**(app.swagger_ui_parameters or {}), "validatorUrl": None}
        page = get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS}/favicon.png",
            oauth2_redirect_url=base + redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=parameters,
        )
        return _own_only(page)

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return _own_only(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        page = get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return _own_only(page)

    app.mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="docs-assets")
    app.add_route(DOCS, swagger_ui, include_in_schema=False)
    app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC, redoc, include_in_schema=False)
