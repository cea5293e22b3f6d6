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

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

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
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Statements a server-side cursor can stream (PostgreSQL cannot DECLARE one for DML).
_QUERY = re.compile(r"^\s*(\(\s*)*(select|with|values|table)\b", re.IGNORECASE)
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
    bad = [k for k in parameters if not _NAME.match(str(k))]
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
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


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
    try:
        with connect(engine, name) as conn, cancelling(ctx, (engine, conn)), conn.begin():
            options = {"stream_results": True} if _QUERY.match(query) else {}
            result = conn.execution_options(**options).execute(statement, parameters)
            if not result.returns_rows:
                affected = result.rowcount
                return {"rowsAffected": affected if affected >= 0 else None}
            facts = cursor_facts(result.cursor)
            rows = [tuple(r) for r in result.fetchmany(max_rows + 1)]
            truncated = len(rows) > max_rows
            rows = rows[:max_rows]
            schema = describe(engine, facts, rows)
            result.close()
    except SQLAlchemyError as exc:
        raise failure(exc, "the query") from None
    finally:
        engine.dispose()
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
