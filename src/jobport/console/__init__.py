"""The web console: server-rendered pages (Jinja2 and htmx, no build step) at /console/,
on the same services and rights as the API. `install(app)` adds its routes, its static
assets and its error pages to the app (api/app.py)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from jobport.console import web
from jobport.console.pages import access, home, jobs, runs, schedules, snippets

router = APIRouter(include_in_schema=False)
router.include_router(home.router, include_in_schema=False)
router.include_router(access.router, include_in_schema=False)
router.include_router(jobs.router, include_in_schema=False)
router.include_router(runs.router, include_in_schema=False)
router.include_router(schedules.router, include_in_schema=False)
router.include_router(snippets.router, include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router, include_in_schema=False)
    app.mount(web.PREFIX + "/static", StaticFiles(directory=web.HERE / "static"), name="console")
    app.add_exception_handler(web.LoginNeeded, web.login_needed)  # type: ignore[arg-type]
