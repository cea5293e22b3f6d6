"""The ASGI application: routes, error mapping, and the engine's life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from jobport import __version__
from jobport.api import errors
from jobport.api.v1 import executions, jobs, projects
from jobport.api.v1 import schedules as schedule_routes
from jobport.engine.dispatcher import Dispatcher
from jobport.engine.executors.local import LocalExecutor
from jobport.scheduler import Scheduler
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store.db import Database

log = logging.getLogger("jobport")


def create_app(settings: Settings | None = None, *, demo: bool = False) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        db.upgrade()
        rt = Runtime(settings, db)
        if demo:
            from jobport.demo import seed

            seed(rt)
        rt.dispatcher = Dispatcher(settings, db, LocalExecutor(settings))
        await rt.dispatcher.start()
        scheduler = Scheduler(rt) if settings.scheduler_enabled else None
        if scheduler is not None:
            scheduler.start()
        app.state.runtime = rt
        try:
            yield
        finally:
            if scheduler is not None:
                await asyncio.to_thread(scheduler.stop)
            await rt.dispatcher.stop()
            db.dispose()

    app = FastAPI(
        title="jobport",
        version=__version__,
        description="Define jobs, run them from anywhere, watch them, cancel them.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(projects.router)
    app.include_router(jobs.router)
    app.include_router(executions.router)
    app.include_router(schedule_routes.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        rt: Runtime = app.state.runtime
        rt.check_database()
        return {"status": "ok", "version": __version__}

    app.add_middleware(errors.BodySizeLimit, limit=settings.max_body_bytes)
    return app
