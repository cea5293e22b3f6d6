"""The `transfer` step: copy a table's or a query's rows from one connection into a target
table, in full or as a delta above a watermark.

Config: `{"source": {"connection": "src", "table": "orders"}` (or `{"connection": "src",
"query": "select ...", "parameters": {...}}`), `"target": {"connection": "dst", "table":
"orders"}, "primaryKey": ["id"], "watermark": "updated_at", "batchSize": 5000}`.

The execution's mode decides what moves:
- `full` replaces the target's rows with the source's. It deletes them and inserts the new
  ones in ONE transaction of the target: under MVCC (PostgreSQL, InnoDB on MariaDB/MySQL)
  and SQLite's locking alike, a reader sees the old rows or the new, never half, and a run
  that fails rolls back to the old rows. A staging table swapped in by RENAME was the
  other way; on MariaDB a RENAME commits implicitly and on every backend it replaces what
  hangs on the table (grants, views, indexes, triggers), so it was not chosen.
- `delta` reads only rows whose watermark column is above the value the step's last
  successful run saw (ctx.watermark()) and upserts them by primary key with the dialect's
  own statement (ON CONFLICT on SQLite and PostgreSQL, ON DUPLICATE KEY UPDATE on
  MySQL/MariaDB), also in one transaction. A delta run with no watermark yet, or one that
  creates the target, runs full. Rows whose watermark is NULL are not moved by a delta (a
  table source logs how many there are).
The step returns `watermarkAfter`; engine/lifecycle.py records it only when the run succeeds.

Source and target in ONE SQLite file share one connection: the source is read inside the
target's transaction (a second connection's read lock would block the writer for good).

A target table that does not exist is created from the source's columns (types mapped
portably, steps/_database.type_for_target). Rows stream in batches (server-side cursors)
and are never all in memory; each batch is logged.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    delete,
    insert,
)
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from jobport.engine.steps import StepContext, StepFailed, StepInterrupted, check_keys
from jobport.engine.steps._database import (
    cancelling,
    connect,
    failure,
    json_value,
    open_engine,
    render_parameters,
    type_for_target,
)
from jobport.engine.steps._transfer_source import _decode, _Source, _split

_ALLOWED = ("source", "target", "primaryKey", "watermark", "batchSize")
DEFAULT_BATCH = 5000
MAX_BATCH = 100_000
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")  # fullmatch
_TEMPLATE = ("{{", "{%", "{#")


def validate(config: dict[str, Any]) -> None:
    check_keys("transfer", config, _ALLOWED)
    source, target = config.get("source"), config.get("target")
    if not isinstance(source, dict):
        raise ValueError('source must be {"connection", "table"} or {"connection", "query"}')
    check_keys("transfer source", source, ("connection", "table", "query", "parameters"))
    _connection(source, "source")
    if ("table" in source) == ("query" in source):
        raise ValueError("source must name either a table or a query")
    if "table" in source:
        _table(source["table"], "source.table")
        if "parameters" in source:
            raise ValueError("source.parameters go with a source query, not a table")
    else:
        query = source["query"]
        if not isinstance(query, str) or not query.strip():
            raise ValueError("source.query must be a non-empty SQL query")
        if any(t in query for t in _TEMPLATE):
            raise ValueError(
                "source.query may not hold a template ({{ ... }}): values are bound, never "
                "spliced into SQL; write :name and put the value in source.parameters"
            )
        if not isinstance(source.get("parameters", {}), dict):
            raise ValueError("source.parameters must be an object of :name values")
    if not isinstance(target, dict):
        raise ValueError('target must be {"connection", "table"}')
    check_keys("transfer target", target, ("connection", "table"))
    _connection(target, "target")
    _table(target.get("table"), "target.table")
    key = config.get("primaryKey", [])
    if not isinstance(key, list) or not all(isinstance(k, str) and k for k in key):
        raise ValueError("primaryKey must be a list of column names")
    if "watermark" in config and (
        not isinstance(config["watermark"], str) or not config["watermark"]
    ):
        raise ValueError("watermark must be a column name")
    batch = config.get("batchSize", DEFAULT_BATCH)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batchSize must be a whole number from 1 to {MAX_BATCH}")


def _connection(part: dict[str, Any], where: str) -> None:
    name = part.get("connection")
    if not isinstance(name, str) or not name.strip() or any(t in name for t in _TEMPLATE):
        raise ValueError(f"{where}.connection must name a database connection of the project")


def _table(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _TABLE.fullmatch(name):
        raise ValueError(f"{where} must be a table name (letters, digits, _; schema.table)")


def render(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Only the source query's parameters take templates, as plain values to bind."""
    source = dict(config["source"])
    if "parameters" in source:
        source["parameters"] = render_parameters(source["parameters"], context, "source.parameters")
    return {**config, "source": source}


def _higher(current: Any, batch: list[Any], index: int) -> Any:
    values = [r[index] for r in batch if r[index] is not None]
    if current is not None:
        values.append(current)
    try:
        return max(values) if values else None
    except TypeError:  # values of kinds that do not compare (naive and aware times)
        raise StepFailed("the watermark column holds values that do not compare") from None


def _target(conn: Connection, name: str, source: _Source, key: list[str]) -> tuple[Table, bool]:
    """The target table, created from the source's columns if absent; (table, created)."""
    schema, table_name = _split(name)
    try:
        return Table(table_name, MetaData(), schema=schema, autoload_with=conn), False
    except NoSuchTableError:
        pass
    finally:
        conn.rollback()  # reflection began a transaction; the load begins its own
    backend = conn.dialect.name
    columns = [
        Column(n, type_for_target(t, backend, n in key), nullable=n not in key, autoincrement=False)
        for n, t in source.columns
    ]
    extra = [PrimaryKeyConstraint(*key)] if key else []
    table = Table(table_name, MetaData(), *columns, *extra, schema=schema)
    try:
        with conn.begin():
            table.create(conn)
    except SQLAlchemyError as exc:
        raise failure(exc, f"creating the target table {name!r}") from None
    return table, True


def _statement(
    conn: Connection, table: Table, names: list[str], key: list[str], upsert: bool
) -> Any:
    if not upsert:
        return insert(table)
    backend = conn.dialect.name
    rest = [n for n in names if n not in key]
    if backend in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(table)
        changes = {n: stmt.inserted[n] for n in rest} or {key[0]: stmt.inserted[key[0]]}
        return stmt.on_duplicate_key_update(changes)
    if backend == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    if not rest:
        return stmt.on_conflict_do_nothing(index_elements=key)
    return stmt.on_conflict_do_update(index_elements=key, set_={n: stmt.excluded[n] for n in rest})


def run(config: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    key: list[str] = list(config.get("primaryKey") or [])
    watermark: str | None = config.get("watermark")
    batch = int(config.get("batchSize", DEFAULT_BATCH))
    if ctx.mode == "delta" and (not key or not watermark):
        raise StepFailed("a delta transfer needs primaryKey and watermark")
    src_name, dst_name = config["source"]["connection"], config["target"]["connection"]
    src_engine = open_engine(ctx, src_name, "source.connection")
    dst_engine = open_engine(ctx, dst_name, "target.connection")
    try:
        if _one_sqlite_file(src_engine, dst_engine):
            if _same_table(config["source"].get("table"), config["target"]["table"]):
                raise StepFailed("the source table is the target table: nothing to transfer")
            ctx.log("system", "source and target are one SQLite file: one connection reads both")
            with connect(dst_engine, dst_name) as dst, cancelling(ctx, (dst_engine, dst)):
                return _transfer(config, ctx, dst_engine, dst, dst, key, watermark, batch)
        with (
            connect(src_engine, src_name) as src,
            connect(dst_engine, dst_name) as dst,
            cancelling(ctx, (src_engine, src), (dst_engine, dst)),
        ):
            return _transfer(config, ctx, src_engine, src, dst, key, watermark, batch)
    finally:
        src_engine.dispose()
        dst_engine.dispose()


def _one_sqlite_file(one: Engine, other: Engine) -> bool:
    """Whether both engines open the same SQLite file (resolved; not in memory)."""
    paths = []
    for engine in (one, other):
        database = engine.url.database or ""
        if database.startswith("file:"):  # a URI filename (?uri=true)
            memory = engine.url.query.get("mode") == "memory" or "mode=memory" in database
            database = "" if memory else database[5:].split("?", 1)[0]
        if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
            return False
        paths.append(os.path.realpath(database))
    try:
        return paths[0] == paths[1] or os.path.samefile(*paths)  # a hard link too
    except OSError:  # a file that does not exist yet
        return False


def _same_table(source: str | None, target: str) -> bool:
    def plain(name: str) -> str:
        schema, table = _split(name.lower())
        return table if schema in (None, "main") else f"{schema}.{table}"

    return source is not None and plain(source) == plain(target)


def _transfer(
    config: dict[str, Any],
    ctx: StepContext,
    src_engine: Engine,
    src: Connection,
    dst: Connection,
    key: list[str],
    watermark: str | None,
    batch: int,
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        source = _Source(src_engine, src, config["source"])
    except SQLAlchemyError as exc:
        raise failure(exc, "reading the source's columns") from None
    missing = [n for n in [*key, *([watermark] if watermark else [])] if n not in source.names]
    if missing:
        raise StepFailed(
            f"the source has no column {', '.join(map(repr, missing))} "
            f"(primaryKey/watermark); its columns: {', '.join(source.names)}"
        )
    before = ctx.watermark() if ctx.watermark is not None and watermark else None
    target_name = config["target"]["table"]
    try:
        table, created = _target(dst, target_name, source, key)
    except StepFailed:
        raise
    except SQLAlchemyError as exc:
        raise failure(exc, f"reading the target table {target_name!r}") from None
    # A delta into a target made just now would leave it holding only the delta: run full.
    delta = ctx.mode == "delta" and before is not None and not created
    if ctx.mode == "delta" and before is None:
        ctx.log("system", "no watermark yet (no successful run before): this run is full")
    elif ctx.mode == "delta" and created:
        ctx.log("system", f"the target table {target_name!r} was created: this run is full")
    absent = [n for n in source.names if n not in table.c]
    if absent:
        raise StepFailed(
            f"the target table {target_name!r} has no column {', '.join(map(repr, absent))}"
        )
    statement = _statement(dst, table, source.names, key, upsert=delta)
    above = _decode(before, source.type_of(watermark)) if delta and watermark else None
    nulls = source.nulls(watermark) if delta and watermark else None
    if nulls:
        ctx.log(
            "stderr",
            f"warning: {nulls} source rows have a NULL watermark ({watermark}): a delta does "
            "not move them (a full run does)",
        )
    mark_index = source.names.index(watermark) if watermark else -1
    highest = above
    read = written = batches = 0
    try:
        with dst.begin():
            if not delta:
                dst.execute(delete(table))
            for rows in source.rows(watermark if delta else None, above, batch):
                if ctx.stopping:
                    raise StepInterrupted()
                batches += 1
                read += len(rows)
                if watermark:
                    highest = _higher(highest, rows, mark_index)
                records = [dict(zip(source.names, r, strict=True)) for r in rows]
                try:
                    dst.execute(statement, records)
                except SQLAlchemyError as exc:
                    raise failure(exc, f"writing batch {batches} to {target_name!r}") from None
                written += len(records)
                ctx.log_many(
                    "stdout",
                    [
                        f"batch {batches}: {read} rows read, {written} written"
                        f" ({time.monotonic() - started:.1f}s)"
                    ],
                )
    except BaseException:
        if created:  # leave the target as it was: absent
            _drop(dst, table)
        raise
    after = json_value(highest) if watermark else None
    if watermark and highest is None:
        after = before
    ctx.log(
        "system",
        f"transferred {read} rows read, {written} written ({'delta' if delta else 'full'})",
    )
    return {
        "mode": "delta" if delta else "full",
        "rowsRead": read,
        "rowsWritten": written,
        "batches": batches,
        "targetCreated": created,
        "watermarkBefore": before,
        "watermarkAfter": after,
        "seconds": round(time.monotonic() - started, 3),
    }


def _drop(conn: Connection, table: Table) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            table.drop(conn)
    except Exception:  # the run failed already; its error is the one to report
        pass
