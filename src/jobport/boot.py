"""The composition root: builds the runtime every entry point runs on.

`jobport serve` (the API with the dispatcher, the worker pool and the scheduler), `jobport
scheduler` (the scheduler alone), `jobport db upgrade` and the CLI's `--local` all start
here. This is the one module that knows every layer; the faces (api/, the CLI) ask it for
a runtime instead of wiring the database, the engine and the scheduler themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from jobport.services import access
from jobport.services.audit import AuditTrail
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store.db import Database


def _say_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def open_runtime(
    settings: Settings, *, pool: bool = True, say: Callable[[str], None] = _say_to_stderr
) -> Runtime:
    """The database (migrated), the built-in roles, the first admin and the token key.

    The first start creates the admin user; a password it generated is said once, here.
    """
    db = Database(settings.database_url, pool=pool)
    try:
        db.upgrade()
        rt = Runtime(settings, db)
        password = access.bootstrap(rt)
    except BaseException:
        db.dispose()
        raise
    if password:
        say(
            f"jobport: created user {settings.admin_username!r} with password "
            f"{password!r} (shown once; change it with `jobport users passwd`)"
        )
    return rt


@contextlib.contextmanager
def local_runtime(settings: Settings | None = None) -> Iterator[Runtime]:
    """A runtime on this machine's database with no engine: for `--local` and maintenance."""
    rt = open_runtime(settings or Settings(), pool=False)
    try:
        yield rt
    finally:
        rt.db.dispose()


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, demo: bool = False) -> AsyncIterator[Runtime]:
    """The whole server's runtime, for the API's lifespan: the audit trail, the demo project
    if asked, the dispatcher over the local worker pool, and the scheduler if enabled."""
    from jobport.engine.dispatcher import Dispatcher
    from jobport.engine.executors.local import LocalExecutor
    from jobport.scheduler import Scheduler

    rt = open_runtime(settings)
    rt.audit = AuditTrail(rt.db)
    rt.audit.start()
    scheduler: Scheduler | None = None
    try:
        if demo:
            from jobport.demo import seed

            seed(rt)
        rt.dispatcher = Dispatcher(settings, rt.db, LocalExecutor(settings))
        await rt.dispatcher.start()
        if settings.scheduler_enabled:
            scheduler = Scheduler(rt)
            scheduler.start()
        yield rt
    finally:
        if scheduler is not None:
            await asyncio.to_thread(scheduler.stop)
        if rt.dispatcher is not None:
            await rt.dispatcher.stop()
        rt.audit.stop()
        rt.db.dispose()


def run_server(settings: Settings, *, demo: bool = False, log_level: str = "info") -> None:
    """Serve the API on settings.host:port until interrupted."""
    import uvicorn

    from jobport.api.app import create_app

    uvicorn.run(
        create_app(settings, demo=demo),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        # jobport reads X-Forwarded-For itself, only from JOBPORT_TRUSTED_PROXIES; uvicorn's
        # own handling would trust any local peer and rewrite the client address first.
        proxy_headers=False,
    )


def run_scheduler(settings: Settings, *, on_start: Callable[[Any], None] | None = None) -> None:
    """Run the scheduler alone in this process until it is stopped (SIGINT or SIGTERM)."""
    import signal

    from jobport.scheduler import Scheduler

    db = Database(settings.database_url)
    try:
        db.upgrade()
        scheduler = Scheduler(Runtime(settings, db))
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: scheduler.stop())
        if on_start is not None:
            on_start(scheduler)
        scheduler.run()
    finally:
        db.dispose()


def upgrade_database(settings: Settings) -> None:
    """Apply every pending migration to settings.database_url."""
    db = Database(settings.database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
