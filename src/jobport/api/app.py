"""The ASGI application: routes, error mapping, and the engine's life cycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from jobport import __version__, boot, console
from jobport.api import docs, errors, health, metrics, oauth, openapi, postman
from jobport.api.audit_trail import AuditMiddleware
from jobport.api.fastpath import FastPath
from jobport.api.guard import InputGuard
from jobport.api.methods import AllowedMethods
from jobport.api.responses import JSONResponse
from jobport.api.v1 import (
    audit,
    connections,
    executions,
    job_routes,
    jobs,
    keys,
    projects,
    roles,
    session,
    users,
)
from jobport.api.v1 import schedules as schedule_routes
from jobport.api.vendors import celonis, infolink, losant
from jobport.domain.access import Principal
from jobport.services.metrics import start_metrics_bind
from jobport.settings import Settings

log = logging.getLogger("jobport")


def create_app(
    settings: Settings | None = None,
    *,
    demo: bool = False,
    local_principal: Principal | None = None,
) -> FastAPI:
    """The app; `local_principal` makes it take every call without a credential as that
    principal: only for `--local` (boot.local_client), which runs it in this process. Such an
    app is never served: its life cycle refuses to start, so a server exits at once."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if local_principal is not None:
            raise RuntimeError("an app built for --local (with a local principal) is not served")
        async with boot.serving(settings, demo=demo) as rt:
            app.state.runtime = rt
            # JOBPORT_METRICS_BIND: the metrics also on their own address, without a key.
            stop_metrics = start_metrics_bind(rt)
            try:
                yield
            finally:
                if stop_metrics is not None:
                    stop_metrics()

    app = FastAPI(
        title="jobport",
        version=__version__,
        description="Define jobs, run them from anywhere, watch them, cancel them.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url=None,  # api/docs.py serves /docs and /redoc with local assets
        redoc_url=None,
    )
    app.state.local_principal = local_principal
    errors.install(app)
    openapi.install(app)
    docs.install(app)
    app.include_router(projects.router)
    app.include_router(jobs.router)
    app.include_router(executions.router)
    app.include_router(schedule_routes.router)
    app.include_router(job_routes.router)
    app.include_router(connections.router)
    app.include_router(keys.router)
    app.include_router(roles.app_router)
    app.include_router(roles.project_router)
    app.include_router(users.router)
    app.include_router(session.router)
    app.include_router(audit.router)
    app.include_router(oauth.router)
    app.include_router(postman.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(celonis.router)
    app.include_router(infolink.router)
    app.include_router(losant.router)
    console.install(app)

    # Innermost: the usual execute served without FastAPI's per-request work (api/fastpath.py).
    app.add_middleware(FastPath)
    # OPTIONS and 405 pass the middleware above (input checks, audit) like any call.
    app.add_middleware(AllowedMethods)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(InputGuard, limit=settings.max_body_bytes)
    return app
