"""The composition root: builds the runtime every entry point runs on.

`jobport serve` (the API with the dispatcher, the worker pool and the scheduler), `jobport
scheduler` (the scheduler alone), `jobport db upgrade` and the CLI's `--local` (a client of
the API app in this process: local_client) all start here. This is the one module that
knows every layer; the faces (api/, the CLI) ask it for a runtime (or a client) instead of
wiring the database, the engine and the scheduler themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from jobport.client import Client, InProcessTransport
from jobport.errors import JobportError
from jobport.services import access
from jobport.services.audit import AuditTrail
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store.db import Checkpointer, Database


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


def os_user() -> str:
    """The name of the OS user running this process ("local" if it has none)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "local"


def local_client(settings: Settings | None = None, *, user: str | None = None) -> Client:
    """A `Client` of the real API, in this process, on this machine's database: `--local`.

    The app (api.app.create_app) runs on a `local_runtime` (no dispatcher, scheduler or
    workers) behind an in-process transport, and takes every call as the local principal
    `local:<os user>`: whoever can open the database holds every right already. So a
    `--local` command asks the same API the same questions as over HTTP, gets the same
    answers and errors, and its changes are audited by the API's own middleware. Close the
    client (or use it as a context manager) to close the database. A database that cannot
    be opened raises JobportError `database_error`.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from jobport.api.app import create_app

    settings = settings or Settings()
    stack = contextlib.ExitStack()
    try:
        rt = stack.enter_context(local_runtime(settings))
    except (SQLAlchemyError, OSError) as exc:  # OSError: a SQLite file that cannot be made
        raise _database_error(settings, exc) from exc
    try:
        app = create_app(settings, local_principal=access.local_principal(user or os_user()))
        app.state.runtime = rt  # no life cycle runs in process: the app gets its runtime here
        transport = _LocalTransport(app, settings, on_close=stack.close)
        return Client("http://local", transport=transport, anonymous=True)
    except BaseException:
        stack.close()
        raise


def _database_error(settings: Settings, exc: Exception) -> JobportError:
    from sqlalchemy.engine import make_url

    try:  # the URL names the database; its password stays out of the message
        where = make_url(settings.database_url).render_as_string(hide_password=True)
    except Exception:  # a URL SQLAlchemy cannot even parse: the error says what is wrong
        where = "the database"
    return JobportError(f"{where}: {exc}", code="database_error")


class _LocalTransport(InProcessTransport):
    """The in-process transport of local_client: a database error inside the app (which a
    server would answer as a 500 and log) ends the call as `database_error`, naming it."""

    def __init__(self, app: Any, settings: Settings, **kwargs: Any) -> None:
        # The peer the app sees: audit entries of --local say they came from "local".
        super().__init__(app, client=("local", 0), **kwargs)
        self.settings = settings

    def handle_request(self, request: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return super().handle_request(request)
        except SQLAlchemyError as exc:
            raise _database_error(self.settings, exc) from exc


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, demo: bool = False) -> AsyncIterator[Runtime]:
    """The whole server's runtime, for the API's lifespan: the audit trail, the demo project
    if asked, the dispatcher over the local worker pool, and the scheduler if enabled."""
    from jobport.engine.dispatcher import Dispatcher
    from jobport.scheduler import Scheduler
    from jobport.services.retention import Pruner
    from jobport.services.starts import StartQueue

    rt = open_runtime(settings)
    rt.audit = AuditTrail(rt.db)
    rt.audit.start()
    rt.starts = StartQueue(rt)
    scheduler: Scheduler | None = None
    pruner: Pruner | None = None
    checkpointer = Checkpointer.of(rt.db)
    listener = None
    try:
        if checkpointer is not None:
            checkpointer.start()
        if demo:
            from jobport.demo import seed

            seed(rt)
        rt.dispatcher = Dispatcher(settings, rt.db, _executor(settings, rt.db))
        await rt.dispatcher.start()
        rt.starts.start_threads()
        listener = _listen(rt)
        if settings.scheduler_enabled:
            scheduler = Scheduler(rt)
            scheduler.start()
        if settings.prune_interval_seconds:  # retention, in the background
            pruner = Pruner(rt.db, settings)
            pruner.start()
        yield rt
    finally:
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.stop)
        if pruner is not None:
            await asyncio.to_thread(pruner.stop)
        if scheduler is not None:
            await asyncio.to_thread(scheduler.stop)
        if listener is not None:
            await asyncio.to_thread(listener.stop)
        await asyncio.to_thread(rt.starts.stop)
        if rt.dispatcher is not None:
            await rt.dispatcher.stop()
        rt.audit.stop()
        rt.db.dispose()


def _executor(settings: Settings, db: Database) -> Any:
    """The executor `JOBPORT_EXECUTOR` names: this host's pool, or Celery queues."""
    if settings.executor == "celery":
        from jobport.engine.executors.celery import CeleryExecutor

        return CeleryExecutor(settings, db)
    from jobport.engine.executors.local import LocalExecutor

    return LocalExecutor(settings)


def _listen(rt: Runtime) -> Any:
    """On PostgreSQL, hear what other nodes did (store/notify.py): a run ended elsewhere
    wakes our waiters; access data changed elsewhere empties our key cache. None on SQLite."""
    if not rt.db.is_postgres:
        return None
    from jobport.store.notify import RECONNECTED, Listener

    dispatcher = rt.dispatcher
    assert dispatcher is not None
    listener = Listener(rt.settings.database_url)
    listener.subscribe("final", dispatcher.notify_final)
    listener.subscribe("access", lambda _: access.forget_cached(rt))
    listener.subscribe(RECONNECTED, lambda _: access.forget_cached(rt))
    listener.start()
    return listener


def preflight(settings: Settings) -> None:
    """Refuse to start, with a JobportError that says why, on settings that cannot work:
    a step user this host does not have, an encryption key that is no Fernet key. Checked
    before anything listens, so the operator reads one line, not a traceback."""
    from jobport.engine.isolation import StepUserError, resolve_user
    from jobport.store.secrets import load_cipher

    try:
        resolve_user(settings.step_user)
    except StepUserError as exc:
        raise JobportError(str(exc), code="bad_setting") from None
    if not settings.rate_limit_storage_url.startswith("memory://"):
        from jobport.services.access.state import limiter_for

        try:
            limiter_for(settings.rate_limit_storage_url)
        except Exception as exc:  # limits' ConfigurationError: a scheme or package missing
            raise JobportError(
                f"JOBPORT_RATE_LIMIT_STORAGE_URL: {exc}", code="bad_setting"
            ) from None
    if settings.executor == "celery":
        if not settings.broker_url:
            raise JobportError(
                "JOBPORT_EXECUTOR=celery needs JOBPORT_BROKER_URL (redis://host:6379/0 or "
                "amqp://user:password@host:5672//)",
                code="bad_setting",
            )
        try:
            import celery  # noqa: F401
        except ImportError:
            raise JobportError(
                "JOBPORT_EXECUTOR=celery needs Celery: pip install 'jobport[celery]'",
                code="bad_setting",
            ) from None
    if settings.encryption_key:  # the key file is made (or read) when first needed
        load_cipher(settings.encryption_key, settings.encryption_key_file)


def run_server(settings: Settings, *, demo: bool = False, log_level: str = "info") -> None:
    """Serve the API on settings.host:port until interrupted."""
    import uvicorn

    from jobport.api.app import create_app

    preflight(settings)

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
    handout = None
    try:
        db.upgrade()
        rt = Runtime(settings, db)
        if settings.executor == "celery":
            # Its runs go to the broker at once. With the local pool they wait in the
            # database for the next sweep of a `jobport serve`.
            from jobport.engine.dispatcher import PublishOnly

            handout = PublishOnly(_executor(settings, db))
            handout.start()
            rt.dispatcher = handout  # type: ignore[assignment]
        scheduler = Scheduler(rt)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: scheduler.stop())
        if on_start is not None:
            on_start(scheduler)
        scheduler.run()
    finally:
        if handout is not None:
            handout.stop()
        db.dispose()


def worker_pool(requested: str, concurrency: int) -> str:
    """The Celery pool `jobport worker` runs (engine/executors/celery.pool_for); ValueError
    for one it cannot."""
    from jobport.engine.executors.celery import pool_for

    return pool_for(requested, concurrency)


def run_worker(
    settings: Settings, queues: list[str], concurrency: int, *, loglevel: str, pool: str = "auto"
) -> int:
    """`jobport worker`: a Celery worker on `queues`; returns its exit code."""
    from jobport.engine.executors.celery import run_worker as run

    return run(settings, queues, concurrency, loglevel=loglevel, pool=pool)


def upgrade_database(settings: Settings) -> None:
    """Apply every pending migration to settings.database_url."""
    db = Database(settings.database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()


def prune(settings: Settings, *, dry_run: bool = False) -> Any:
    """`jobport db prune`: one retention pass over settings.database_url, to its end (or,
    dry, what it would remove); returns services.retention.Pruned."""
    from jobport.services import retention

    db = Database(settings.database_url)
    try:
        db.upgrade()
        if dry_run:
            return retention.count(db, settings)
        pruned = retention.prune(db, settings, seconds=float("inf"))
        retention.record(pruned)
        return pruned
    finally:
        db.dispose()
