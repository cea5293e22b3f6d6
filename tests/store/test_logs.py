"""Execution logs: appended in batches, read back by cursor, counted on the execution."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from jobport.store import executions as execution_store
from jobport.store import logs as log_store
from jobport.store.db import Database

from .rows import add_execution, add_job, add_project, log_lines, nbytes, running


@pytest.fixture
def execution(db: Database) -> dict[str, Any]:
    with db.write() as conn:
        return add_execution(conn, add_job(conn, add_project(conn)), **running())


def seqs(lines: list[dict[str, Any]]) -> list[int]:
    return [ln["seq"] for ln in lines]


def test_log_batches_are_read_back_by_cursor(db: Database, execution: dict[str, Any]) -> None:
    first, second = log_lines(1, 5), log_lines(6, 7, step=None)
    with db.write() as conn:
        log_store.append(conn, execution["id"], first, nbytes(first))
    with db.write() as conn:
        log_store.append(conn, execution["id"], second, nbytes(second))
    eid = execution["id"]
    with db.read() as conn:
        assert seqs(log_store.read(conn, eid, after=0, limit=4)) == [1, 2, 3, 4]
        assert seqs(log_store.read(conn, eid, after=4, limit=4)) == [5, 6, 7, 8]
        assert seqs(log_store.read(conn, eid, after=8, limit=100)) == [9, 10, 11, 12]
        assert log_store.read(conn, eid, after=12, limit=100) == []
        everything = log_store.read(conn, eid, after=0, limit=100)
        stored = execution_store.get(conn, eid)
    assert everything[0] == {"execution_id": eid, "iteration": None, **first[0]}
    assert everything[-1]["step"] is None and everything[-1]["text"] == "line 12"
    assert (stored["log_lines"], stored["log_bytes"]) == (12, nbytes(first) + nbytes(second))


@pytest.mark.parametrize("count", [1, 199, 200, 201, 450])
def test_a_batch_of_any_size_is_stored_whole_and_in_order(
    db: Database, execution: dict[str, Any], count: int
) -> None:
    """PostgreSQL takes a batch in multi-row INSERTs of 200 lines: around those edges too."""
    lines = [{**ln, "iteration": ln["seq"] % 3 or None} for ln in log_lines(1, count)]
    with db.write() as conn:
        log_store.append(conn, execution["id"], lines, nbytes(lines))
    with db.read() as conn:
        back = log_store.read(conn, execution["id"], after=0, limit=1000)
        stored = execution_store.get(conn, execution["id"])
    assert back == [{"execution_id": execution["id"], **ln} for ln in lines]
    assert (stored["log_lines"], stored["log_bytes"]) == (count, nbytes(lines))


def test_an_empty_batch_changes_nothing(db: Database, execution: dict[str, Any]) -> None:
    with db.write() as conn:
        log_store.append(conn, execution["id"], [], 0)
    with db.read() as conn:
        stored = execution_store.get(conn, execution["id"])
        assert log_store.read(conn, execution["id"], after=0, limit=10) == []
    assert (stored["log_lines"], stored["log_bytes"]) == (0, 0)


def test_logs_of_executions_do_not_mix(db: Database, execution: dict[str, Any]) -> None:
    with db.write() as conn:
        other = add_execution(conn, add_job(conn, add_project(conn)), **running())
        log_store.append(conn, execution["id"], log_lines(1, 3), 21)
        log_store.append(conn, other["id"], log_lines(1, 2), 14)
    with db.read() as conn:
        assert seqs(log_store.read(conn, other["id"], after=0, limit=10)) == [1, 2]
        assert execution_store.get(conn, other["id"])["log_lines"] == 2
        assert execution_store.get(conn, execution["id"])["log_lines"] == 3


def test_unicode_and_long_lines_are_kept(db: Database, execution: dict[str, Any]) -> None:
    text = "naïve ☃ " + "x" * 70_000
    line = {**log_lines(1, 1)[0], "text": text, "stream": "stderr", "level": "error"}
    with db.write() as conn:
        log_store.append(conn, execution["id"], [line], len(text.encode()) + 1)
    with db.read() as conn:
        (stored,) = log_store.read(conn, execution["id"], after=0, limit=10)
    assert (stored["text"], stored["stream"], stored["level"]) == (text, "stderr", "error")


def test_text_with_placeholders_quotes_and_percent_signs_is_stored_verbatim(
    db: Database, execution: dict[str, Any]
) -> None:
    texts = ["100% done", "? and %s and %(x)s", 'it\'s "quoted"; DROP TABLE x; --', "tab\there", ""]
    lines = [{**ln, "text": t} for ln, t in zip(log_lines(1, len(texts)), texts, strict=True)]
    with db.write() as conn:
        log_store.append(conn, execution["id"], lines, nbytes(lines))
    with db.read() as conn:
        stored = log_store.read(conn, execution["id"], after=0, limit=10)
    assert [ln["text"] for ln in stored] == texts


def test_log_times_come_back_as_the_same_instant_in_utc(
    db: Database, execution: dict[str, Any]
) -> None:
    sydney = dt.timezone(dt.timedelta(hours=11))
    at = dt.datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=sydney)
    line = {**log_lines(1, 1)[0], "at": at}
    with db.write() as conn:
        log_store.append(conn, execution["id"], [line], 7)
    with db.read() as conn:
        (stored,) = log_store.read(conn, execution["id"], after=0, limit=10)
    assert stored["at"] == at and stored["at"].tzinfo == dt.UTC
