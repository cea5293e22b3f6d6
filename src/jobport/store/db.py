"""The database handle: engine creation, SQLite pragmas, transactions, migrations."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DisconnectionError, IntegrityError, StatementError
from sqlalchemy.pool import NullPool

from jobport.errors import Invalid

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("jobport.db")


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


class Database:
    """One engine per process. Writes go through `write()`, reads through `read()`."""

    def __init__(self, url: str, *, pool: bool = True) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgres = parsed.get_backend_name() == "postgresql"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # LIFO: a busy process keeps reusing its warm connections (which need no ping,
            # below); the others age, and are pinged before their next use.
            kwargs.update(pool_size=10, max_overflow=20, pool_use_lifo=True)
        if not pool:
            kwargs = {k: v for k, v in kwargs.items() if not k.startswith("pool")}
            kwargs.pop("max_overflow", None)
            kwargs["poolclass"] = NullPool
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        elif pool:
            _ping_when_idle(self.engine)
        self._local = threading.local()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: BEGIN IMMEDIATE on SQLite so it never deadlocks."""
        with _refused_values(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """Each statement its own transaction (PostgreSQL): for a write that is one
        statement, it spares the BEGIN and COMMIT round trips."""
        if not self.is_postgres:
            raise ValueError("autocommit() is for PostgreSQL; SQLite writes BEGIN IMMEDIATE")
        with _refused_values(), self.engine.connect() as conn:
            # The driver's own switch, for this checkout only. SQLAlchemy's
            # execution_options(isolation_level="AUTOCOMMIT") sets and resets it through
            # the dialect's characteristics: a tenth of a Celery worker's CPU, at two
            # checkouts a run (bench/README.md).
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.autocommit = True
            try:
                yield conn
            finally:
                if not raw.closed:
                    raw.autocommit = False

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (deferred on SQLite, so readers never block writers)."""
        with _refused_values(), self.engine.connect() as conn:
            conn = conn.execution_options(jobport_readonly=True)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()

    def upgrade(self) -> None:
        """Apply every pending Alembic migration."""
        from alembic import command

        if self.is_sqlite:
            _owner_only(make_url(self.url).database)
        command.upgrade(alembic_config(self), "head")


def alembic_config(db: Database) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def _owner_only(path: str | None) -> None:
    """Create the SQLite file readable by its owner only, or make it so: it holds the token
    signing key. SQLite gives the -wal and -shm files it creates the main file's mode."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(name).st_mode & 0o777
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:  # another user's file, say: say so and carry on
            log.warning("could not make %s readable by its owner only: %s", name, exc)


# A pooled connection is pinged before use only if it sat idle this long. SQLAlchemy's
# pool_pre_ping pings at every checkout: a round trip per transaction (60-115 us of a
# 340 us write on PostgreSQL here; two of a Celery child's run's seven round trips). One
# used within the second is taken as alive; if the server went away meanwhile, that one
# use fails, SQLAlchemy invalidates the pool, and the next checkout connects afresh.
PING_AFTER_IDLE = 1.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["jobport_idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_from = record.info.get("jobport_idle_from")  # None: connected just now
        if idle_from is None or time.monotonic() - idle_from < PING_AFTER_IDLE:
            return
        try:
            ping(dbapi_conn)
        except Exception as exc:  # the pool drops it and checks out another
            raise DisconnectionError("the database closed this connection") from exc


def ping(dbapi_conn: Any) -> None:
    """SELECT 1 in autocommit (as SQLAlchemy's own pre-ping does for psycopg): no
    transaction is left open on the connection."""
    before = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    finally:
        if not dbapi_conn.closed:
            dbapi_conn.autocommit = before


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so we can say BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # A server checkpoints in the background (Checkpointer); a writer does it itself
        # only past this many pages, if that thread falls behind or no server runs.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw = conn.connection.dbapi_connection
        if conn.get_execution_options().get("jobport_readonly"):
            raw.execute("BEGIN")
        else:
            begin_immediate(raw)


BUSY_TIMEOUT_MS = 30_000
WAL_AUTOCHECKPOINT_PAGES = 10_000  # 40 MB of WAL at SQLite's 4 KB pages (its default: 1,000)


class Checkpointer:
    """Copies the SQLite WAL back into the database file from a thread of its own.

    With SQLite's automatic checkpoint, the writer whose commit crosses 1,000 WAL pages
    copies them (and syncs the file) while it still holds the one write lock: a worker's
    commit cost 139 us on average with it, 103 us without (engine/worker.py holds the
    lock for a whole run's end). A PASSIVE checkpoint takes no write lock: writers go on
    meanwhile. Run by a server (boot.serving), every `interval` seconds.
    """

    def __init__(self, path: str, interval: float = 0.1) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, db: Database) -> Checkpointer | None:
        """One for a SQLite file; None for PostgreSQL or an in-memory database."""
        path = make_url(db.url).database if db.is_sqlite else None
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return cls(path)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jobport-checkpoint", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        failing = False
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    failing = False
                except sqlite3.Error as exc:  # the writers' own checkpoint still bounds it
                    if not failing:  # said once, not ten times a second
                        log.warning("background WAL checkpoint failed: %s", exc)
                    failing = True
        finally:
            conn.close()


_FIRST_PAUSE = 0.0001
_LONGEST_PAUSE = 0.001


def begin_immediate(raw: Any) -> None:
    """BEGIN IMMEDIATE, waiting for SQLite's one writer lock at most BUSY_TIMEOUT_MS.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries. While the
    server committed batch after batch of starts (services/starts.py), a worker process
    retrying that way found the lock taken every time: no run ran until the requests
    stopped (bench/run.py, phase b: the workers at 0% CPU while the server accepted). Here
    the waits are 0.1 ms doubling up to 1 ms, so every writer of the file gets its turn
    within about a millisecond of the lock coming free.
    """
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline = None
        pause = _FIRST_PAUSE
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + BUSY_TIMEOUT_MS / 1000
                elif now > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or ("locked" in str(exc))


@contextlib.contextmanager
def savepoint(conn: Connection, *, clash: Exception) -> Iterator[None]:
    """The statements inside, in a savepoint: if they break a constraint (a name or an id
    taken meanwhile), the savepoint rolls back, the transaction goes on, and `clash` is
    raised from the database's error."""
    try:
        with conn.begin_nested():
            yield
    except IntegrityError as exc:
        raise clash from exc


@contextlib.contextmanager
def _refused_values() -> Iterator[None]:
    """A value the database refuses (too long for its column, out of its range) is the
    caller's bad input, and the transaction rolled back: Invalid, not a server error."""
    try:
        yield
    except (DataError, StatementError, OverflowError) as exc:
        orig = getattr(exc, "orig", exc)
        if not isinstance(exc, DataError) and not isinstance(orig, OverflowError):
            raise
        reason = (str(orig).strip().splitlines() or ["out of range"])[0]
        raise Invalid(
            f"a value was refused by the database: {reason}", code="invalid_request"
        ) from exc
