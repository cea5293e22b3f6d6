"""The `sql` step: one statement on a project's database connection, its values bound.

Config: `{"connection": "warehouse", "query": "select ... where region = :region",
"parameters": {"region": "{{ params.region }}"}, "maxRows": 10000}`. The query is SQL the
job's author wrote and holds no template: each value a caller may influence goes into
`parameters` (rendered as plain text there) and reaches the database as a bound parameter
(`:name`), never as SQL text.

A statement that returns rows gives `{"schema", "records", "rowCount", "truncated"}` (the
shape results with a schema take, see domain/executions.to_result), at most `maxRows`
records, with a note when the cap cut the result; one that changes data gives
`{"rowsAffected"}`. A stop of the step (timeout, cancel) cancels the statement at the
database (steps/_database.cancelling).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from jobport.engine import templating
from jobport.engine.steps import StepContext, StepFailed, check_keys
from jobport.engine.steps._database import (
    cancelling,
    connect,
    cursor_facts,
    describe,
    failure,
    json_value,
    open_engine,
    render_parameters,
)

_ALLOWED = ("connection", "query", "parameters", "maxRows")
DEFAULT_MAX_ROWS = 10_000
MAX_MAX_ROWS = 1_000_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch: `$` would pass a final newline
# Statements a server-side cursor can stream (PostgreSQL cannot DECLARE one for DML).
_QUERY = re.compile(r"\s*(\(\s*)*(select|with|values|table)\b", re.IGNORECASE)
# PostgreSQL refuses some of those as a cursor (a data-modifying WITH, SELECT ... INTO,
# WITH ... INSERT): feature not supported (0A) or a syntax error (42), raised by the DECLARE
# before anything ran. Such a statement runs again, plainly.
_NOT_A_CURSOR = ("0A", "42")
_TEMPLATE = ("{{", "{%", "{#")


def validate(config: dict[str, Any]) -> None:
    check_keys("sql", config, _ALLOWED)
    name = config.get("connection")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("connection must name a database connection of the project")
    if any(t in name for t in _TEMPLATE):
        raise ValueError("connection must be a connection's name, not a template")
    query = config.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be a non-empty SQL statement")
    if any(t in query for t in _TEMPLATE):
        raise ValueError(
            "query may not hold a template ({{ ... }}): values are bound, never spliced into "
            "SQL. Write :name in the query and put the value in parameters, e.g. "
            '"parameters": {"name": "{{ params.name }}"}'
        )
    parameters = config.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ValueError("parameters must be an object of :name values")
    bad = [k for k in parameters if not _NAME.fullmatch(str(k))]
    if bad:
        raise ValueError(f"parameter names must be identifiers (letters, digits, _): {bad}")
    _max_rows(config.get("maxRows", DEFAULT_MAX_ROWS), at_validation=True)


def _max_rows(value: Any, *, at_validation: bool = False) -> int:
    if at_validation and isinstance(value, str) and "{{" in value:
        return DEFAULT_MAX_ROWS  # a template: checked once rendered
    problem = ValueError(f"maxRows must be a whole number from 1 to {MAX_MAX_ROWS}")
    if isinstance(value, bool):
        raise problem
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise problem from None
    if (number != value and not isinstance(value, str)) or not 1 <= number <= MAX_MAX_ROWS:
        raise problem
    return number


def render(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The query stays as written; parameter values and maxRows render as plain text."""
    out = dict(config)
    out["parameters"] = render_parameters(config.get("parameters", {}), context, "parameters")
    if "maxRows" in config:
        out["maxRows"] = templating.render(config["maxRows"], context, "maxRows")
    return out


def _unique(names: list[str]) -> list[str]:
    """Column names made unique: each name's first column keeps it, a repeat gets the first
    `_2`, `_3`, ... that no column has (`select 1 as a, 2 as a_2, 3 as a` gives a, a_2,
    a_3), so no record loses a value to a clash."""
    originals = set(names)
    used: set[str] = set()
    out = []
    for name in names:
        unique, n = name, 1
        while unique in used or (unique != name and unique in originals):
            n += 1
            unique = f"{name}_{n}"
        used.add(unique)
        out.append(unique)
    return out


class _NotACursor(Exception):
    """PostgreSQL refused the statement as a server-side cursor; nothing of it ran."""


def _execute(
    engine: Engine,
    conn: Connection,
    statement: TextClause,
    parameters: dict[str, Any],
    max_rows: int,
    stream: bool,
) -> dict[str, Any] | tuple[list[dict[str, Any]], list[tuple[Any, ...]], bool]:
    """The statement in a transaction of its own: `{"rowsAffected"}`, or the schema, at
    most max_rows rows and whether more came. A statement PostgreSQL cannot stream
    raises _NotACursor, its transaction rolled back, to run again with stream=False."""
    with conn.begin():
        try:
            options = {"stream_results": stream}  # this statement's (conn's would persist)
            result = conn.execute(statement, parameters, execution_options=options)
        except DBAPIError as exc:
            state = str(getattr(exc.orig, "sqlstate", None) or "")
            refused = stream and engine.dialect.name == "postgresql"
            if refused and state[:2] in _NOT_A_CURSOR and not exc.connection_invalidated:
                raise _NotACursor() from exc
            raise
        if not result.returns_rows:
            affected = result.rowcount
            return {"rowsAffected": affected if affected >= 0 else None}
        facts = cursor_facts(result.cursor)
        rows = [tuple(r) for r in result.fetchmany(max_rows + 1)]
        truncated = len(rows) > max_rows
        rows = rows[:max_rows]
        result.close()
        return describe(engine, facts, rows), rows, truncated


def run(config: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    try:
        max_rows = _max_rows(config.get("maxRows", DEFAULT_MAX_ROWS))
    except ValueError as exc:
        raise StepFailed(str(exc)) from None
    query = config["query"]
    parameters = dict(config.get("parameters") or {})
    statement = text(query)
    wanted = set(statement.compile().params)
    missing = sorted(wanted - set(parameters))
    if missing:
        raise StepFailed(
            f"the query uses {', '.join(':' + m for m in missing)} but parameters has no "
            f"value for {', '.join(missing)}"
        )
    parameters = {k: v for k, v in parameters.items() if k in wanted}
    name = config["connection"]
    engine = open_engine(ctx, name)
    stream = _QUERY.match(query) is not None
    try:
        with connect(engine, name) as conn, cancelling(ctx, (engine, conn)):
            try:
                outcome = _execute(engine, conn, statement, parameters, max_rows, stream)
            except _NotACursor:
                outcome = _execute(engine, conn, statement, parameters, max_rows, False)
    except SQLAlchemyError as exc:
        raise failure(exc, "the query") from None
    finally:
        engine.dispose()
    if isinstance(outcome, dict):
        return outcome
    schema, rows, truncated = outcome
    names = _unique([c["name"] for c in schema])
    for column, unique in zip(schema, names, strict=True):
        column["name"] = unique
    records = [dict(zip(names, map(json_value, row), strict=True)) for row in rows]
    out: dict[str, Any] = {
        "schema": schema,
        "records": records,
        "rowCount": len(records),
        "truncated": truncated,
    }
    if truncated:
        note = f"the result was cut at maxRows ({max_rows} rows); the query returned more"
        out["note"] = note
        ctx.log("system", note)
    return out
