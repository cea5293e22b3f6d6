"""The column types of the data steps: a driver's type name and a SQLAlchemy type to one
standard type, values to JSON, and the portable type a transfer creates a target with."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
from sqlalchemy import types
from sqlalchemy.dialects import mysql, postgresql, sqlite

from jobport.engine.steps._database import (
    STANDARD_TYPES,
    json_value,
    standard_of,
    standard_of_name,
    type_for_target,
)


@pytest.mark.parametrize(
    ("name", "standard"),
    [
        ("nvarchar", "text"),
        ("character varying(20)", "text"),
        ("varchar", "text"),
        ("TEXT", "text"),
        ("INTEGER", "integer"),
        ("int4", "integer"),
        ("bigint", "integer"),
        ("smallint", "integer"),
        ("bigserial", "integer"),
        ("numeric(10,2)", "decimal"),
        ("decimal(38,10)", "decimal"),
        ("money", "decimal"),
        ("REAL", "float"),
        ("float8", "float"),
        ("double precision", "float"),
        ("bool", "boolean"),
        ("tinyint(1)", "boolean"),
        ("date", "date"),
        ("timestamp", "datetime"),
        ("timestamptz", "datetime"),
        ("timestamp with time zone", "datetime"),
        ("datetime2", "datetime"),
        ("bytea", "binary"),
        ("BLOB", "binary"),
        ("varbinary", "binary"),
        ("jsonb", "json"),
        ("json", "json"),
        ("uuid", "text"),
        (None, "text"),
        # MySQL/MariaDB: pymysql's names, sizes, signs.
        ("int unsigned", "integer"),
        ("bigint(20) unsigned", "integer"),
        ("mediumint", "integer"),
        ("tinyint", "integer"),
        ("year", "integer"),
        ("decimal(10,2) unsigned", "decimal"),
        ("timestamp(6) without time zone", "datetime"),
        ("medium_blob", "binary"),
        ("varbinary(max)", "binary"),
        ("geometry", "text"),
        # A name that merely holds `int`, `date`, `json` or `blob` is no integer, date, ...:
        # intervals, geometry, ranges and arrays are text (nativeType keeps the driver's name).
        ("interval", "text"),
        ("INTERVAL DAY TO SECOND", "text"),
        ("point", "text"),
        ("int4[]", "text"),
        ("INTEGER[]", "text"),
        ("_int4", "text"),
        ("int4range", "text"),
        ("timestamp[]", "text"),
        ("date[]", "text"),
        ("jsonpath", "text"),
        ("json[]", "text"),
        ("blobs", "text"),
        ("mint", "text"),
        ("print", "text"),
        ("time", "text"),
        ("timetz", "text"),
        ("inet", "text"),
        ("tsvector", "text"),
        ("16385", "text"),
        # Validated whole, not up to a final newline (`$` would let that pass).
        ("int4\n[]", "text"),
        ("date\n", "date"),  # blank space around a name is no part of it
    ],
)
def test_driver_type_names_map_to_a_standard_type(name: str | None, standard: str) -> None:
    assert standard_of_name(name) == standard
    assert standard in STANDARD_TYPES


@pytest.mark.parametrize(
    ("sqltype", "standard"),
    [
        (types.Integer(), "integer"),
        (sqlite.INTEGER(), "integer"),
        (postgresql.BIGINT(), "integer"),
        (types.Numeric(10, 2), "decimal"),
        (types.Float(), "float"),
        (postgresql.DOUBLE_PRECISION(), "float"),
        (types.Boolean(), "boolean"),
        (types.Date(), "date"),
        (postgresql.TIMESTAMP(timezone=True), "datetime"),
        (sqlite.DATETIME(), "datetime"),
        (types.LargeBinary(), "binary"),
        (postgresql.BYTEA(), "binary"),
        (postgresql.JSONB(), "json"),
        (types.String(20), "text"),
        (mysql.VARCHAR(20), "text"),
        (postgresql.UUID(), "text"),
        (types.NullType(), "text"),
        (postgresql.INTERVAL(), "text"),
        (types.Interval(), "text"),
        (postgresql.ARRAY(types.Integer()), "text"),
        (postgresql.INT4RANGE(), "text"),
        (postgresql.MONEY(), "decimal"),
        (mysql.TINYINT(), "integer"),
        (mysql.YEAR(), "integer"),
        (mysql.LONGBLOB(), "binary"),
        (mysql.LONGTEXT(), "text"),
    ],
)
def test_sqlalchemy_types_map_to_a_standard_type(sqltype: types.TypeEngine, standard: str) -> None:
    assert standard_of(sqltype) == standard


def test_values_become_json_without_losing_what_they_say() -> None:
    assert json_value(decimal.Decimal("12.30")) == "12.30"
    assert json_value(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert json_value(dt.date(2026, 1, 2)) == "2026-01-02"
    assert json_value(b"\x00\xff") == "AP8="
    assert json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_value({"a": 1}) == {"a": 1}
    assert [json_value(v) for v in (None, True, 3, 2.5, "x")] == [None, True, 3, 2.5, "x"]


def test_a_target_gets_portable_types() -> None:
    numeric = type_for_target(types.Numeric(10, 2), "postgresql", key=False)
    assert (numeric.precision, numeric.scale) == (10, 2)
    assert isinstance(type_for_target(sqlite.INTEGER(), "postgresql", key=True), types.BigInteger)
    assert isinstance(type_for_target(types.Text(), "sqlite", key=True), types.Text)
    # MySQL/MariaDB cannot key a TEXT column, nor make a VARCHAR without a length.
    key = type_for_target(types.Text(), "mariadb", key=True)
    assert isinstance(key, types.String) and key.length == 255
    assert type_for_target(types.String(30), "mysql", key=False).length == 30
    assert type_for_target(postgresql.TIMESTAMP(), "mysql", key=False).fsp == 6
    zoned = type_for_target(postgresql.TIMESTAMP(timezone=True), "postgresql", key=False)
    assert zoned.timezone is True
    assert isinstance(type_for_target(postgresql.JSONB(), "sqlite", key=False), types.JSON)
    # An interval or an array is no integer (a BIGINT target refused the rows): text.
    for sqltype in (postgresql.INTERVAL(), postgresql.ARRAY(types.Integer())):
        assert isinstance(type_for_target(sqltype, "postgresql", key=False), types.Text)


def test_pymysql_type_codes_get_their_own_names() -> None:
    """FIELD_TYPE.CHAR and .INTERVAL are aliases of TINY and ENUM: a TINYINT column is no
    char (nor, with the binary charset numbers have, a binary)."""
    from pymysql.constants import FIELD_TYPE

    from jobport.engine.steps._database import _pymysql_names

    names = _pymysql_names()
    assert names[FIELD_TYPE.TINY] == "tiny" and names[FIELD_TYPE.ENUM] == "enum"
    assert names[FIELD_TYPE.LONGLONG] == "longlong" and names[FIELD_TYPE.BLOB] == "blob"


def test_a_parameter_that_is_one_template_keeps_its_type() -> None:
    from jobport.engine.steps._database import render_parameters
    from jobport.engine.templating import TemplateError

    context = {"params": {"n": 5, "name": "o'hara", "ids": [1, 2], "ok": True}}
    values = {
        "n": "{{ params.n }}",
        "name": " {{ params.name }} ",
        "upper": "{{ params.name | upper }}",
        "text": "n={{ params.n }}",
        "ids": "{{ params.ids }}",
        "ok": "{{ params.ok }}",
        "literal": 7,
    }
    assert render_parameters(values, context, "parameters") == {
        "n": 5,
        "name": "o'hara",
        "upper": "O'HARA",
        "text": "n=5",
        "ids": [1, 2],
        "ok": True,
        "literal": 7,
    }
    with pytest.raises(TemplateError, match=r"parameters\.x: .*no attribute 'missing'"):
        render_parameters({"x": "{{ params.missing }}"}, context, "parameters")
    with pytest.raises(TemplateError, match=r"not allowed|unsafe"):
        render_parameters({"x": "{{ params.__class__.__mro__ }}"}, context, "parameters")
    # One template with blank space around it, newlines too, is still the whole value.
    assert render_parameters({"n": "{{ params.n }}\n"}, context, "p") == {"n": 5}
    assert render_parameters({"n": "{{ params.n }}\nx"}, context, "p") == {"n": "5\nx"}
