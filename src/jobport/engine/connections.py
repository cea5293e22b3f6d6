"""What a worker's steps reach through the store: a project's connections, with their
secrets decrypted, and the watermark of a step's last successful run; and the probe that
tells whether a connection answers."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from jobport.domain.connections import MASK, Resolved, secret_query_values
from jobport.engine.steps import StepFailed
from jobport.settings import Settings
from jobport.store import connections as connection_store
from jobport.store.db import Database, normalise_url
from jobport.store.secrets import Cipher, load_cipher


class ConnectionSource:
    """A worker's reader of connections and watermarks. The key is loaded on first use, so
    a worker whose steps use no connection never reads it."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._cipher: Cipher | None = None
        self._lock = threading.Lock()

    def cipher(self) -> Cipher:
        with self._lock:
            if self._cipher is None:
                self._cipher = load_cipher(
                    self._settings.encryption_key, self._settings.encryption_key_file
                )
            return self._cipher

    def resolve(self, project_id: str, name: str) -> Resolved:
        """The project's connection `name` with its secrets; StepFailed if there is none."""
        with self._db.read() as conn:
            row = connection_store.find(conn, project_id, name)
        if row is None:
            raise StepFailed(f"no connection {name!r} in this project")
        secret = self.cipher().decrypt(row["secret"])
        return Resolved(row["name"], row["kind"], secret["url"], dict(secret["headers"]))

    def watermark(self, job_id: str, step: str) -> Any:
        with self._db.read() as conn:
            return connection_store.watermark(conn, job_id, step)


# --- probing: does a connection answer? (POST .../connections/{c}/test) --------------------


class ProbeFailed(Exception):
    """The connection did not answer as it should; the message holds no secret."""


def _engine_url(url: str) -> URL:
    """The SQLAlchemy URL to open `url` with, on the drivers jobport ships: psycopg 3 for
    PostgreSQL, PyMySQL for MySQL and MariaDB (their defaults need C client libraries)."""
    parsed = make_url(normalise_url(url))
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed


def probe(resolved: Resolved, timeout: float) -> str:
    """Reach the connection once: a SQL database connects and answers `SELECT 1` (a SQLite
    file must exist: a probe never makes one); an HTTP service answers a GET of its base URL,
    with the headers, below 500. Returns what it saw; raises ProbeFailed saying why not,
    with the connection's password and header values taken out."""
    hidden = secrets_of(resolved.url, resolved.headers)
    try:
        if resolved.kind == "http":
            return _probe_http(resolved, timeout)
        return _probe_sql(resolved, timeout)
    except ProbeFailed as exc:
        raise ProbeFailed(scrub(str(exc), hidden)) from None
    except Exception as exc:  # a driver's or the network's own words, whatever they are
        cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        said = f"{type(cause).__name__}: {text}".rstrip(": ")
        raise ProbeFailed(scrub(said, hidden)) from None


def secrets_of(url: str, headers: dict[str, str]) -> list[str]:
    """The texts that would give a connection's secrets away: the whole URL, its password
    (as written and decoded) and the headers' values."""
    found = [url, *headers.values(), *secret_query_values(url)]
    passwords: list[str] = []
    with contextlib.suppress(ValueError):  # as an http URL reads
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        _user, colon, password = userinfo.partition(":")
        passwords += [password] if colon else []
    with contextlib.suppress(Exception):  # as SQLAlchemy reads a database URL
        passwords += [str(make_url(url).password or "")]
    for password in passwords:
        found += [password, unquote(password), quote(unquote(password), safe="")]
    return found


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with each secret (3 characters or more: shorter ones are no secret, and would
    garble every message) replaced by ***, as written or escaped (a library may quote the
    bytes it refused), and the whole URL by "the URL"."""
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        if "://" in secret:
            text = text.replace(repr(secret), "the URL")
        for form in sorted(_forms(secret), key=len, reverse=True):
            text = text.replace(form, MASK)
    return text


def _forms(secret: str) -> set[str]:
    """A secret as written, and as repr() and the bytes' repr() would show it."""
    encoded = secret.encode("utf-8", "surrogatepass")
    return {
        secret,
        repr(secret)[1:-1],
        repr(encoded)[2:-1],
        secret.encode("unicode_escape").decode(),
    }


def _probe_http(resolved: Resolved, timeout: float) -> str:
    import httpx2  # here: a worker whose steps make no HTTP call never loads it

    with httpx2.Client(timeout=timeout, headers=resolved.headers) as client:
        status = client.get(resolved.url).status_code
    if status >= 500:
        raise ProbeFailed(f"the service answered HTTP {status}")
    return f"the service answered HTTP {status}"


def bounded_engine(url: str, timeout: float, *, read_only: bool = False) -> Engine:
    """An engine for a short look at a connection's database (no pool): connecting is
    bounded by `timeout` (reads too, on MySQL/MariaDB), and a SQLite file is opened as it
    is, never created (read-only with `read_only`). Dispose of it after use."""
    parsed = _engine_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"poolclass": NullPool}
    seconds = max(2, math.ceil(timeout))
    if backend == "sqlite":
        kwargs["creator"] = _sqlite_opener(parsed, timeout, "ro" if read_only else "rw")
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": seconds}
    else:
        kwargs["connect_args"] = {"connect_timeout": seconds, "read_timeout": seconds}
    return create_engine(parsed, **kwargs)


def _probe_sql(resolved: Resolved, timeout: float) -> str:
    engine = bounded_engine(resolved.url, timeout)
    backend = engine.url.get_backend_name()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar_one()
            if backend == "sqlite":  # reads the file's header: is it a database at all?
                conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    finally:
        engine.dispose()
    return f"the {backend} database answered"


def _sqlite_opener(url: URL, timeout: float, mode: str = "rw") -> Any:
    """Opens the SQLite database read-write (or read-only: mode=ro), never creating it."""
    database = url.database or ""
    if database in ("", ":memory:"):
        target, as_uri = ":memory:", False
    elif database.startswith("file:") and url.query.get("uri") == "true":
        target, as_uri = database, True  # the caller wrote a SQLite URI: as written
    else:
        target, as_uri = Path(database).absolute().as_uri() + f"?mode={mode}", True

    def opener() -> sqlite3.Connection:
        try:
            return sqlite3.connect(target, uri=as_uri, timeout=timeout, check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise ProbeFailed(f"{exc} (the file must exist: a test does not create it)") from None

    return opener
