"""What the `sql` and `transfer` steps share: an engine for a project's connection, the
cancel of a running statement at the database, clear failures, and column types.

A step's thread cannot be stopped inside a blocking driver call (an async exception waits
for the call to return), so `cancelling` watches the step's stop signal in a helper thread
and cancels at the database: SQLite `interrupt()`, psycopg `cancel()`, MySQL/MariaDB
`KILL QUERY <thread id>` from a second connection. The blocked call then fails, and the
step raises StepInterrupted.

Types: each column is described by the driver's own type (`numeric(10,2)`, `INTEGER`), with
precision and scale where known, and one standard type of STANDARD_TYPES. A name maps to a
standard type only when a rule matches it whole; arrays, intervals, geometry and any other
name are text.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from sqlalchemy import Connection, Engine, create_engine, types
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from jobport.domain.connections import masked
from jobport.engine import templating
from jobport.engine.steps import StepContext, StepFailed, StepInterrupted

STANDARD_TYPES = ("text", "integer", "decimal", "float", "boolean", "date", "datetime")
STANDARD_TYPES += ("binary", "json")

# The driver a URL without one gets: the ones jobport installs (psycopg, pymysql).
_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}


# --- parameters ----------------------------------------------------------------------------

# A value that is one template and nothing else keeps its type (a number binds as a number:
# SQLite compares the text '5' above every number); any other string renders as text.
_WHOLE = re.compile(r"\s*\{\{((?:(?!\{\{|\}\}).)*)\}\}\s*", re.DOTALL)  # fullmatch
_native = ImmutableSandboxedEnvironment(undefined=StrictUndefined)


def render_parameters(values: Any, context: dict[str, Any], path: str) -> Any:
    """The values of a statement's :name parameters, rendered to bind: never SQL text."""
    if not isinstance(values, dict):
        return templating.render(values, context, path)
    out = {}
    for key, value in values.items():
        where = f"{path}.{key}"
        found = _WHOLE.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            out[key] = templating.render(value, context, where)
            continue
        try:
            result = _native.compile_expression(found.group(1), undefined_to_none=False)(**context)
            if isinstance(result, Undefined):
                str(result)  # raises UndefinedError, naming what is undefined
        except UndefinedError as exc:
            raise templating.TemplateError(f"{where}: {exc.message}") from None
        except SecurityError as exc:
            raise templating.TemplateError(f"{where}: not allowed: {exc}") from None
        except TemplateSyntaxError as exc:
            raise templating.TemplateError(f"{where}: {exc.message}") from None
        except Exception as exc:
            raise templating.TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None
        scalar = result is None or isinstance(result, bool | int | float | str | list)
        out[key] = result if scalar else str(result)
    return out


# --- engines and errors -----------------------------------------------------------------


def open_engine(ctx: StepContext, name: Any, what: str = "connection") -> Engine:
    """An engine (no pool: the step owns its connections) for the project's connection."""
    if not isinstance(name, str) or not name:
        raise StepFailed(f"{what} must name a connection of the project")
    if ctx.connection is None:
        raise StepFailed("connections are available only inside a worker")
    resolved = ctx.connection(name)
    if resolved.kind != "sql":
        raise StepFailed(f"connection {name!r} is an {resolved.kind} connection, not a database")
    try:
        url = make_url(resolved.url)
        backend = url.get_backend_name()
        if "+" not in url.drivername and backend in _DEFAULT_DRIVERS:
            url = url.set(drivername=f"{backend}+{_DEFAULT_DRIVERS[backend]}")
        return create_engine(url, poolclass=NullPool)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, ArgumentError) else str(exc)
        raise StepFailed(
            f"connection {name!r} has an unusable URL ({_safe_url(resolved.url)}): {reason}"
        ) from None


def _safe_url(url: str) -> str:
    try:
        return masked(url)
    except Exception:  # not even parseable: show nothing of it
        return "unparseable"


def failure(exc: BaseException, doing: str) -> StepFailed:
    """A StepFailed saying what failed, with the database's own message (never the bound
    values, which SQLAlchemy's text would print)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        reason = str(exc.orig).strip()
    elif isinstance(exc, SQLAlchemyError):
        reason = str(exc).split("\n[SQL:", 1)[0].strip()
    else:
        reason = f"{type(exc).__name__}: {exc}"
    reason = reason.split("\n(Background on this error", 1)[0]
    return StepFailed(f"{doing} failed: {reason}")


def connect(engine: Engine, name: str) -> Connection:
    try:
        return engine.connect()
    except SQLAlchemyError as exc:
        raise failure(exc, f"connecting to {name!r}") from None


# --- cancel at the database -------------------------------------------------------------


def _cancel(engine: Engine, conn: Connection) -> None:
    """Cancel whatever `conn` runs now, at the database."""
    raw = conn.connection.driver_connection
    backend = engine.dialect.name
    if backend == "sqlite":
        raw.interrupt()
    elif backend == "postgresql":
        (getattr(raw, "cancel_safe", None) or raw.cancel)()
    elif backend in ("mysql", "mariadb"):
        thread_id = int(raw.thread_id())  # the server's number: an int, never caller text
        with engine.connect() as other:
            other.exec_driver_sql(f"KILL QUERY {thread_id}")


@contextlib.contextmanager
def cancelling(ctx: StepContext, *pairs: tuple[Engine, Connection]) -> Iterator[None]:
    """While the block runs, a stop of the step cancels the connections' statements; the
    block then ends with StepInterrupted (whatever error the cancel caused inside)."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if ctx.stop.wait(0.05) and not done.is_set():
                for engine, conn in pairs:
                    with contextlib.suppress(Exception):
                        _cancel(engine, conn)
                done.wait(0.5)  # again, if a new statement started meanwhile

    watcher = threading.Thread(target=watch, name=f"cancel-{ctx.step}", daemon=True)
    watcher.start()
    try:
        yield
    except (Exception, StepInterrupted):
        if ctx.stop.is_set():
            raise StepInterrupted() from None
        raise
    finally:
        done.set()
        watcher.join(timeout=5)
    if ctx.stop.is_set():
        raise StepInterrupted()


# --- values ------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A database value as JSON: decimals as exact strings, times in ISO 8601, bytes in
    base64; anything else as it is (clean() makes the rest storable)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    return value


# --- types -------------------------------------------------------------------------------

# Each pattern matches a whole (lowercased, spaces collapsed) name: a loose search took
# `interval`, `point` and `int4[]` for integers. Arrays, intervals, geometry, times of day and
# any name not here are text (the column keeps its driver's name as nativeType).
_SIZE = r"(\(\s*\d+\s*(,\s*\d+\s*)?\))?"  # (10) or (10,2)
_SIGN = r"( (un)?signed)?( zerofill)?"
_ZONE = r"( with(out)? time zone)?"
_NAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), standard)
    for pattern, standard in (
        (r"tinyint\(1\)( unsigned)?|bool|boolean|bit\(1\)", "boolean"),
        (r"jsonb?", "json"),
        (rf"(timestamp|datetime|smalldatetime|datetime2|datetimeoffset){_SIZE}{_ZONE}", "datetime"),
        (r"timestamptz(\(\d+\))?", "datetime"),
        (r"date|newdate", "date"),
        (
            rf"(tiny|small|medium|big)?int(eger)?{_SIZE}{_SIGN}|int[248]|int24|(small|big)?serial[248]?"
            r"|long|longlong|short|tiny|year(\(4\))?",
            "integer",
        ),
        (
            rf"(numeric|decimal|newdecimal|dec|fixed|number|money|smallmoney){_SIZE}{_SIGN}",
            "decimal",
        ),
        (
            rf"(float|double|double precision|real|float4|float8|binary_float|binary_double)"
            rf"{_SIZE}{_SIGN}",
            "float",
        ),
        (
            r"(tiny|medium|long)?_?blob|bytea|image|long raw|raw(\(\d+\))?"
            r"|(var)?binary(\(\s*(\d+|max)\s*\))?",
            "binary",
        ),
    )
)


def standard_of_name(name: str | None) -> str:
    """The standard type of a driver's type name (`numeric(10,2)`, `INTEGER`, `nvarchar`);
    text for any name no rule matches whole (`interval`, `point`, `int4[]`)."""
    text_ = " ".join((name or "").lower().split())
    for pattern, standard in _NAME_RULES:
        if pattern.fullmatch(text_):
            return standard
    return "text"


def standard_of(sqltype: types.TypeEngine[Any]) -> str:
    """The standard type of a SQLAlchemy (reflected) type."""
    checks: tuple[tuple[type, str], ...] = (
        (types.Boolean, "boolean"),
        (types.Interval, "text"),  # a timedelta, stored as a DATETIME where there is none
        (types.JSON, "json"),
        (types.DateTime, "datetime"),
        (types.Date, "date"),
        (types.Integer, "integer"),
        (types.Float, "float"),
        (types.Numeric, "decimal"),
        (types._Binary, "binary"),
        (types.String, "text"),
    )
    for kind, standard in checks:
        if isinstance(sqltype, kind):
            return standard
    try:
        return standard_of_name(str(sqltype.compile()))
    except Exception:
        return standard_of_name(type(sqltype).__name__)


def _pymysql_names() -> dict[int, str]:
    try:
        from pymysql.constants import FIELD_TYPE
    except ImportError:  # pragma: no cover - the mysql extra
        return {}
    names: dict[int, str] = {}
    for key, value in vars(FIELD_TYPE).items():  # the first name: CHAR and INTERVAL are
        if key.isupper():  # later aliases of TINY and ENUM
            names.setdefault(value, key.lower())
    return names


_MYSQL_NAMES = {"newdecimal": "decimal", "long": "int", "longlong": "bigint", "short": "smallint"}
_MYSQL_NAMES |= {"tiny": "tinyint", "int24": "mediumint", "var_string": "varchar"}
_MYSQL_NAMES |= {"string": "char", "newdate": "date"}
# pymysql reports TEXT columns as BLOB; the binary charset (63) tells the bytes apart.
_MYSQL_BINARY = {"varchar": "varbinary", "char": "binary"}
_MYSQL_TEXT = {"blob": "text", "tiny_blob": "tinytext", "medium_blob": "mediumtext"}
_MYSQL_TEXT |= {"long_blob": "longtext"}


def cursor_facts(cursor: Any) -> tuple[list[Any], list[Any]]:
    """What describe() needs of a cursor, taken before its rows are read (a drained
    server-side cursor is gone): its description, and pymysql's fields (charsets)."""
    fields = getattr(getattr(cursor, "_result", None), "fields", None) or []
    return list(cursor.description or []), list(fields)


def describe(
    engine: Engine, facts: tuple[list[Any], list[Any]], rows: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The schema of a result: for each column its name, its driver type (with precision
    and scale where known) and its standard type."""
    backend = engine.dialect.name
    description, fields = facts
    out = []
    for index, col in enumerate(description):
        name, code = col[0], col[1]
        precision, scale = None, None
        if backend == "postgresql":
            native = getattr(col, "type_display", None) or str(code)
            precision, scale = getattr(col, "precision", None), getattr(col, "scale", None)
        elif backend in ("mysql", "mariadb"):
            native = _MYSQL_NAMES.get(_pymysql_names().get(code, ""), "")
            native = native or _pymysql_names().get(code, str(code))
            binary = index < len(fields) and getattr(fields[index], "charsetnr", 0) == 63
            native = (_MYSQL_BINARY if binary else _MYSQL_TEXT).get(native, native)
            if native == "decimal":  # pymysql's length counts the sign and the point
                flags = getattr(fields[index], "flags", 0) if index < len(fields) else 0
                scale = col[5] or 0
                precision = col[4] - (1 if scale else 0) - (0 if flags & 32 else 1)
                native = f"decimal({precision},{scale})"
        else:  # SQLite gives no types; the storage class of the first value is its own
            first = next((r[index] for r in rows if r[index] is not None), None)
            native = _SQLITE_CLASS.get(type(first), "NULL" if first is None else "TEXT")
        entry: dict[str, Any] = {"name": name, "type": standard_of_name(native)}
        entry["nativeType"] = native
        if precision is not None:
            entry["precision"] = precision
        if scale is not None:
            entry["scale"] = scale
        out.append(entry)
    return out


_SQLITE_CLASS = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB", bool: "INTEGER"}


def type_for_target(sqltype: types.TypeEngine[Any], backend: str, key: bool) -> Any:
    """A type the target database can create for a reflected source column: the portable
    (generic) form of it, sized where MySQL/MariaDB need a size (keys, VARCHAR)."""
    standard = standard_of(sqltype)
    mysql = backend in ("mysql", "mariadb")
    if standard == "integer":
        return types.BigInteger()  # a SQLite INTEGER holds 64 bits; so does this
    if standard == "decimal":
        precision = getattr(sqltype, "precision", None)
        scale = getattr(sqltype, "scale", None)
        if precision is None and mysql:
            return types.Numeric(38, 10)
        return types.Numeric(precision, scale)
    if standard == "float":
        return types.Float(53) if mysql else types.Float()
    if standard == "boolean":
        return types.Boolean()
    if standard == "date":
        return types.Date()
    if standard == "datetime":
        zoned = bool(getattr(sqltype, "timezone", False))
        if mysql:
            from sqlalchemy.dialects.mysql import DATETIME

            return DATETIME(fsp=6)
        return types.DateTime(timezone=zoned)
    if standard == "binary":
        return types.LargeBinary()
    if standard == "json":
        return types.JSON()
    length = getattr(sqltype, "length", None)
    if length:
        return types.String(length)
    return types.String(255) if mysql and key else types.Text()
