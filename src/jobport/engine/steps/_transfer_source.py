"""The source side of the `transfer` step: a table or a query, its columns and their types
for a target to be made from, and its rows streamed in batches above a watermark."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    bindparam,
    column,
    func,
    select,
    text,
    types,
)
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from jobport.engine.steps import StepFailed
from jobport.engine.steps._database import (
    cursor_facts,
    describe,
    failure,
    standard_of,
)

_ZONED = re.compile(r"^timestamptz|with time zone|datetimeoffset", re.IGNORECASE)


def _split(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return schema or None, table


class _Source:
    """The source's columns, and its rows above a watermark."""

    def __init__(self, engine: Engine, conn: Connection, config: dict[str, Any]) -> None:
        self.engine, self.conn = engine, conn
        if "table" in config:
            schema, name = _split(config["table"])
            try:
                table = Table(name, MetaData(), schema=schema, autoload_with=conn)
            except NoSuchTableError:
                raise StepFailed(f"the source has no table {config['table']!r}") from None
            self.selectable: Any = table
            self.columns = [(c.name, c.type) for c in table.columns]
            self.params: dict[str, Any] = {}
        else:
            self.params = dict(config.get("parameters") or {})
            self.columns = self._query_columns(config["query"])
            names = [column(n, types.NullType()) for n, _ in self.columns]  # values as read
            self.selectable = text(config["query"]).columns(*names).subquery("jobport_source")
        self.names = [n for n, _ in self.columns]
        conn.rollback()  # reflection opened a transaction; streaming opens its own

    def _query_columns(self, query: str) -> list[tuple[str, Any]]:
        wrapped = f"SELECT * FROM ({query}) jobport_source"
        sqlite = self.engine.dialect.name == "sqlite"  # gives types only by its values
        result = self.conn.execute(
            text(wrapped + (" LIMIT 1" if sqlite else " WHERE 1=0")), self.params
        )
        facts = cursor_facts(result.cursor)
        rows = [tuple(r) for r in result.fetchall()]
        return [(c["name"], _type_of(c)) for c in describe(self.engine, facts, rows)]

    def type_of(self, name: str) -> Any:
        return dict(self.columns)[name]

    def rows(self, watermark: str | None, above: Any, batch: int) -> Iterator[list[Any]]:
        query = select(*[self.selectable.c[n] for n in self.names])
        if watermark is not None and above is not None:
            bound = bindparam("jobport_watermark", above, type_=self.selectable.c[watermark].type)
            query = query.where(self.selectable.c[watermark] > bound)
        options = {"stream_results": True, "yield_per": batch}  # this read only: the
        try:  # connection may be the target's too (one SQLite file)
            result = self.conn.execute(query, self.params, execution_options=options)
            yield from result.partitions(batch)
        except SQLAlchemyError as exc:
            raise failure(exc, "reading the source") from None

    def nulls(self, watermark: str) -> int | None:
        """How many rows of a table source have no watermark (None for a query source:
        counting would run the query twice)."""
        if not isinstance(self.selectable, Table):
            return None
        mark = self.selectable.c[watermark]
        try:
            query = select(func.count()).select_from(self.selectable).where(mark.is_(None))
            return int(self.conn.execute(query).scalar_one())
        except SQLAlchemyError as exc:
            raise failure(exc, "counting the source's rows without a watermark") from None
        finally:
            self.conn.rollback()  # the load begins its own transaction


def _type_of(described: dict[str, Any]) -> Any:
    standard = described["type"]
    if standard == "decimal":
        return types.Numeric(described.get("precision"), described.get("scale"))
    if standard == "datetime":  # PostgreSQL's timestamptz keeps its zone in the target
        return types.DateTime(timezone=bool(_ZONED.search(described.get("nativeType") or "")))
    simple = {
        "integer": types.BigInteger,
        "float": types.Float,
        "boolean": types.Boolean,
        "date": types.Date,
        "binary": types.LargeBinary,
        "json": types.JSON,
    }
    return simple.get(standard, types.Text)()


def _decode(value: Any, sqltype: Any) -> Any:
    """A stored watermark (JSON) as a value of its column's type, to bind."""
    if value is None or not isinstance(value, str):
        return value
    standard = standard_of(sqltype)
    try:
        if standard == "datetime":
            return dt.datetime.fromisoformat(value)
        if standard == "date":
            return dt.date.fromisoformat(value)
        if standard == "decimal":
            return decimal.Decimal(value)
    except (ValueError, decimal.InvalidOperation):
        pass
    return value
