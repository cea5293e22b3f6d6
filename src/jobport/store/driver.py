"""Statements run on the DB-API connection itself, inside the caller's transaction.

The few statements every run makes (its claim, its end) are compiled once here, per
dialect, and executed on the driver's cursor. Their parameters and results still go
through the columns' own type processors, so what is stored and read back is exactly what
SQLAlchemy would store and read. What that spares (bench/README.md, issue 15):
- SQLite: a worker holds the database's one write lock from its BEGIN IMMEDIATE to its
  COMMIT, and everything it does meanwhile delays every other writer. SQLAlchemy's
  execution of a statement (its context, events, parameter and result objects) took about
  70-100 us of a run's 510 us under the lock.
- PostgreSQL: a claim cost a Celery worker 330 us of CPU through SQLAlchemy, 107 us on
  the cursor; on two cores shared with the server and the database, that CPU is the
  throughput.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per parameter: its name in the SQL (None: positional, in this order), its name in
    # the caller's params (or None for a value fixed in the statement), the fixed value,
    # and the bind processor.
    binds: tuple[tuple[str | None, str | None, Any, Callable[[Any], Any] | None], ...]
    keys: tuple[str, ...]  # the RETURNING columns' keys, in order
    results: tuple[Callable[[Any], Any] | None, ...]


class DriverStatement:
    """A Core INSERT/UPDATE/DELETE, or a text() with typed bindparams, run on the driver's
    cursor: qmark (sqlite3) or pyformat (psycopg) parameters."""

    def __init__(self, statement: ClauseElement, params: tuple[str, ...]) -> None:
        """`params`: the names of the statement's bindparams the caller gives."""
        self.statement = statement
        self.params = frozenset(params)
        self._compiled: dict[str, _Compiled] = {}

    def compiles(self, dialect: Dialect) -> bool:
        """Whether it can run on this dialect's driver: its paramstyle is one it takes, and
        every bind is a parameter or has its value (not a column default SQLAlchemy would
        compute at execution)."""
        try:
            self._compile(dialect)
        except ValueError:
            return False
        return True

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        if dialect.paramstyle not in ("qmark", "pyformat"):
            raise ValueError(
                f"driver statements need qmark or pyformat parameters, not {dialect.paramstyle}"
            )
        compiled = self.statement.compile(dialect=dialect)
        if dialect.paramstyle == "qmark":
            names: list[tuple[str | None, str]] = [(None, n) for n in compiled.positiontup or ()]
        else:
            escaped = compiled.escaped_bind_names or {}
            names = [(escaped.get(n, n), n) for n in compiled.binds]
        binds = []
        for in_sql, name in names:
            bind = compiled.binds[name]
            given = bind.key if bind.key in self.params else None
            if given is None and bind.value is None and bind.callable is None:
                raise ValueError(f"bind {bind.key!r} has no value and is not a parameter")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((in_sql, given, bind.value, process))
        returning = getattr(self.statement, "_returning", None)
        columns = list(returning) if returning else []
        found = _Compiled(
            sql=str(compiled),
            binds=tuple(binds),
            keys=tuple(c.key for c in columns),
            results=tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ),
        )
        self._compiled[dialect.name] = found
        return found

    @staticmethod
    def _values(compiled: _Compiled, params: dict[str, Any]) -> Any:
        positional: list[Any] = []
        named: dict[str, Any] = {}
        for in_sql, name, fixed, process in compiled.binds:
            value = params[name] if name is not None else fixed
            if process is not None:
                value = process(value)
            if in_sql is None:
                positional.append(value)
            else:
                named[in_sql] = value
        return named if named else positional

    def _run(self, conn: Connection, params: dict[str, Any]) -> Any:
        compiled = self._compile(conn.dialect)
        values = self._values(compiled, params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with _as_sqlalchemy_errors(conn, compiled.sql, values):
            cursor.execute(compiled.sql, values)
        return compiled, cursor

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Execute once per row (the driver's executemany: psycopg pipelines them)."""
        compiled = self._compile(conn.dialect)
        values = [self._values(compiled, row) for row in rows]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with _as_sqlalchemy_errors(conn, compiled.sql, values[:1]):
                cursor.executemany(compiled.sql, values)
        finally:
            cursor.close()

    def rowcount(self, conn: Connection, params: dict[str, Any]) -> int:
        """Execute; the number of rows it changed."""
        _, cursor = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def scalar(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Execute; the first column of the first row (as the driver gives it), or None."""
        compiled, cursor = self._run(conn, params)
        try:
            with _as_sqlalchemy_errors(conn, compiled.sql, params):
                row = cursor.fetchone()
                if row is not None:
                    cursor.fetchall()
        finally:
            cursor.close()
        return None if row is None else row[0]

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        """Execute; the first RETURNING row as a dict of column keys, or None."""
        compiled, cursor = self._run(conn, params)
        try:
            with _as_sqlalchemy_errors(conn, compiled.sql, params):
                row = cursor.fetchone()
                if row is not None:
                    cursor.fetchall()  # a statement's rows are all read before the next one
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            key: (process(value) if process is not None else value)
            for key, process, value in zip(compiled.keys, compiled.results, row, strict=True)
        }


@contextlib.contextmanager
def savepoint(conn: Connection, name: str) -> Iterator[None]:
    """A SAVEPOINT on the driver's connection: released when the block ends, rolled back
    to (and the exception raised on) when it raises. What begin_nested() does, without
    its bookkeeping (a worker takes one under the write lock for every run)."""
    if not name.isidentifier():  # it is part of the SQL text
        raise ValueError(f"a savepoint's name is an identifier, not {name!r}")
    raw = conn.connection.dbapi_connection
    assert raw is not None

    def run(sql: str) -> None:
        with _as_sqlalchemy_errors(conn, sql, ()):
            raw.execute(sql)

    run(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        run(f"ROLLBACK TO {name}")
        run(f"RELEASE {name}")
        raise
    run(f"RELEASE {name}")


@contextlib.contextmanager
def _as_sqlalchemy_errors(conn: Connection, sql: str, params: Any) -> Iterator[None]:
    """The driver's errors as SQLAlchemy raises them (IntegrityError, OperationalError...),
    so callers see the same exceptions either way."""
    base = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        raise DBAPIError.instance(sql, params, exc, base) from exc
