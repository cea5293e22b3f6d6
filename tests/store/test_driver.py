"""Driver statements (store/driver.py): what they store and read back is what SQLAlchemy's
own execution stores and reads, and their errors are SQLAlchemy's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import IntegrityError

from jobport.domain.clock import utcnow
from jobport.store import driver
from jobport.store import executions as execution_store
from jobport.store.db import Database
from jobport.store.tables import executions, projects

from .rows import add_execution, add_job, add_project, project_row


def _claim(now: dt.datetime) -> Any:
    return (
        update(executions)
        .where(executions.c.id == bindparam("i"), executions.c.status == "queued")
        .values(status="running", worker=bindparam("w"), started_at=bindparam("t"))
        .returning(*executions.c)
    )


def test_a_row_comes_back_as_sqlalchemy_reads_it(db: Database) -> None:
    """JSON columns decoded, times aware UTC, the same dict as a Core execution's row."""
    now = utcnow()
    statement = _claim(now)
    fast = driver.DriverStatement(statement, ("i", "w", "t"))
    with db.write() as conn:
        job = add_job(conn, add_project(conn), parameters={"day": "mon", "n": [1, 2]})
        first, second = add_execution(conn, job), add_execution(conn, job)
        by_core = dict(
            conn.execute(statement, {"i": first["id"], "w": "a", "t": now}).one()._mapping
        )
        by_driver = fast.first(conn, {"i": second["id"], "w": "a", "t": now})
        missing = fast.first(conn, {"i": "no-such-run", "w": "a", "t": now})
    assert by_driver is not None and missing is None
    differ = {"id", "object_id", "created_at", "not_before"}  # two runs, made a moment apart
    assert {k: v for k, v in by_driver.items() if k not in differ} == {
        k: v for k, v in by_core.items() if k not in differ
    }
    assert by_driver["started_at"] == now and by_driver["started_at"].tzinfo is not None
    assert by_driver["parameters"] == {"day": "mon", "n": [1, 2]}
    with db.read() as conn:  # and stored as Core stores it: read back the same
        assert execution_store.find(conn, second["id"])["started_at"] == now


def test_rowcount_and_errors_are_sqlalchemys(db: Database) -> None:
    taken = project_row("taken")
    rename = driver.DriverStatement(
        update(projects).where(projects.c.id == bindparam("i")).values(name=bindparam("n")),
        ("i", "n"),
    )
    with db.write() as conn:
        conn.execute(insert(projects), [taken, project_row("other")])
        assert rename.rowcount(conn, {"i": "no-such-project", "n": "x"}) == 0
        with pytest.raises(IntegrityError):  # not sqlite3.IntegrityError
            rename.first(conn, {"i": taken["id"], "n": "other"})


def test_a_savepoint_undoes_only_its_own_statements(sqlite: Database) -> None:
    with sqlite.write() as conn:
        conn.execute(insert(projects), [project_row("kept")])
        with pytest.raises(RuntimeError), driver.savepoint(conn, "trial"):
            conn.execute(insert(projects), [project_row("undone")])
            raise RuntimeError("over the limit")
        with driver.savepoint(conn, "trial"):
            conn.execute(insert(projects), [project_row("also-kept")])
    with sqlite.read() as conn:
        names = {r.name for r in conn.execute(projects.select())}
    assert names == {"kept", "also-kept"}


def test_a_savepoints_name_must_be_an_identifier(sqlite: Database) -> None:
    with (
        sqlite.write() as conn,
        pytest.raises(ValueError, match="identifier"),
        driver.savepoint(conn, "x; DROP TABLE projects"),
    ):
        pass


def test_only_qmark_and_pyformat_dialects_are_taken() -> None:
    from sqlalchemy.dialects import mysql

    fast = driver.DriverStatement(_claim(utcnow()), ("i", "w", "t"))
    with pytest.raises(ValueError, match="qmark or pyformat"):
        fast._compile(mysql.mysqldb.dialect())


def test_a_text_statement_with_typed_binds_stores_what_core_stores(db: Database) -> None:
    """A text() statement's typed bindparams go through their types (JSON encoded, times
    as Core writes them), and scalar() gives the first column."""
    from sqlalchemy import String, text

    now = utcnow()
    statement = text(
        "UPDATE executions SET result = :result, finished_at = :at WHERE id = :i RETURNING id"
    ).bindparams(
        bindparam("result", type_=executions.c.result.type),
        bindparam("at", type_=executions.c.finished_at.type),
        bindparam("i", type_=String),
    )
    fast = driver.DriverStatement(statement, ("result", "at", "i"))
    with db.write() as conn:
        run = add_execution(conn, add_job(conn, add_project(conn)))
        result = {"rows": 3, "names": ["a", "b"], "none": None}
        assert fast.scalar(conn, {"result": result, "at": now, "i": run["id"]}) == run["id"]
        assert fast.scalar(conn, {"result": result, "at": now, "i": "no-such-run"}) is None
    with db.read() as conn:
        found = execution_store.find(conn, run["id"])
    assert found["result"] == result and found["finished_at"] == now
