"""Concluding an execution: final status, result, last logs and retries, in one transaction."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from jobport.domain.clock import utcnow
from jobport.domain.executions import ErrorCode, Status
from jobport.engine.lifecycle import Concluded, conclude, conclude_alone, conclude_lost
from jobport.store import executions as execution_store
from jobport.store import logs as log_store
from jobport.store import notify
from jobport.store.db import Database

from .rows import add_execution, add_job, add_project, log_lines, nbytes, running

RESULT = {"schema": [{"name": "n", "type": "integer"}], "records": [{"n": 1}]}


def start_run(db: Database, *, logged: int = 0, **spec: Any) -> dict[str, Any]:
    """A running execution of a new job, with `logged` lines already flushed."""
    with db.write() as conn:
        job = add_job(conn, add_project(conn), parameters={"day": "mon"}, **spec)
        row = add_execution(
            conn,
            job,
            **running(),
            principal="alice",
            idempotency_key="order-42",
            parameters={"day": "tue"},
        )
        if logged:
            lines = log_lines(1, logged)
            log_store.append(conn, row["id"], lines, nbytes(lines))
    return row


def stored(db: Database, execution_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return execution_store.get(conn, execution_id)


def logs(db: Database, execution_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return log_store.read(conn, execution_id, after=0, limit=1000)


def set_running(db: Database, execution_id: str) -> None:
    with db.write() as conn:
        assert execution_store.transition(
            conn, execution_id, Status.RUNNING, [Status.QUEUED], worker="w", started_at=utcnow()
        )


def test_success_stores_result_steps_and_last_log_lines(db: Database) -> None:
    run = start_run(db, logged=3)
    steps = [{**run["steps"][0], "status": "succeeded"}]
    last = log_lines(4, 2)
    before = utcnow()
    done = conclude(
        db,
        run["id"],
        Status.SUCCEEDED,
        result=RESULT,
        steps=steps,
        log_lines=last,
        log_bytes=nbytes(last),
    )
    assert done == Concluded(run["id"], run["job_id"], Status.SUCCEEDED)
    row = stored(db, run["id"])
    assert row["status"] == "succeeded" and row["result"] == RESULT
    assert row["error_code"] is None and row["error_message"] is None
    assert row["steps"] == steps
    assert row["finished_at"] >= before
    assert [ln["seq"] for ln in logs(db, run["id"])] == [1, 2, 3, 4, 5]
    assert (row["log_lines"], row["log_bytes"]) == (5, nbytes(log_lines(1, 5)))


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED])
def test_the_counters_hold_the_last_lines_on_the_workers_path(db: Database, status: Status) -> None:
    """A worker passes the row it claimed: the ending UPDATE counts the last lines (and
    a retry's notice is counted on top), with no UPDATE of the counters of their own."""
    run = start_run(db, logged=3, retries=1)
    last = log_lines(4, 2)
    done = conclude(
        db,
        run["id"],
        status,
        steps=run["steps"],  # as a worker does: else it is not the prebuilt UPDATE
        log_lines=last,
        log_bytes=nbytes(last),
        claimed=stored(db, run["id"]),
    )
    assert done.status == status and (done.retry_id is not None) == (status == Status.FAILED)
    row, lines = stored(db, run["id"]), logs(db, run["id"])
    assert [ln["seq"] for ln in lines] == list(range(1, len(lines) + 1))
    assert len(lines) == (6 if status == Status.FAILED else 5)
    assert (row["log_lines"], row["log_bytes"]) == (
        len(lines),
        sum(len(ln["text"]) + 1 for ln in lines),
    )


def test_status_and_last_logs_commit_together_or_not_at_all(db: Database) -> None:
    run = start_run(db, logged=3)
    clashing = log_lines(3, 2)  # seq 3 is already stored
    with pytest.raises(IntegrityError):
        conclude(db, run["id"], Status.SUCCEEDED, result=RESULT, log_lines=clashing, log_bytes=9)
    row = stored(db, run["id"])
    assert (row["status"], row["result"], row["finished_at"]) == ("running", None, None)
    assert row["log_lines"] == 3


@pytest.mark.parametrize("requested", [Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT])
def test_a_cancelling_execution_always_ends_cancelled(db: Database, requested: Status) -> None:
    run = start_run(db, retries=3)
    with db.write() as conn:
        assert execution_store.transition(conn, run["id"], Status.CANCELLING, [Status.RUNNING])
    done = conclude(db, run["id"], requested, result=RESULT, error_code="step_failed")
    assert done.status == Status.CANCELLED and done.retry_id is None
    row = stored(db, run["id"])
    assert (row["status"], row["result"], row["error_code"], row["error_message"]) == (
        "cancelled",
        None,
        ErrorCode.CANCELLED.value,
        "cancelled on request",
    )
    with db.read() as conn:  # a cancelled run is not retried
        assert execution_store.active_for_job(conn, run["job_id"]) == []


@pytest.mark.parametrize("ending", [Status.FAILED, Status.TIMED_OUT])
def test_a_failed_run_with_retries_left_queues_its_retry(db: Database, ending: Status) -> None:
    run = start_run(db, logged=2, retries=2, retry_delay_seconds=30, retry_backoff=2)
    last = log_lines(3, 1)
    before = utcnow()
    done = conclude(
        db,
        run["id"],
        ending,
        error_code="step_failed",
        error_message="exit 1",
        log_lines=last,
        log_bytes=nbytes(last),
    )
    assert done.status == ending and done.retry_id is not None and done.retry_at is not None
    assert before + dt.timedelta(seconds=30) <= done.retry_at <= utcnow() + dt.timedelta(seconds=30)

    failed = stored(db, run["id"])
    assert (failed["status"], failed["error_message"]) == (ending.value, "exit 1")
    retry = stored(db, done.retry_id)
    assert retry["status"] == "queued" and retry["trigger"] == "retry"
    assert (retry["attempt"], retry["retry_of"]) == (2, run["id"])
    assert retry["not_before"] == done.retry_at and retry["not_before"] > utcnow()
    assert retry["created_at"] >= before
    for same in ("project_id", "job_id", "job_name", "parameters", "mode", "principal", "spec"):
        assert retry[same] == run[same], same
    assert retry["idempotency_key"] is None  # the key stays with the first attempt
    assert [s["status"] for s in retry["steps"]] == ["pending"]
    assert retry["worker"] is None and retry["started_at"] is None and retry["log_lines"] == 0

    notice = logs(db, run["id"])[-1]
    assert notice["seq"] == 4 and notice["stream"] == "system" and notice["level"] == "warning"
    assert notice["text"] == f"retrying as execution {done.retry_id} in 30s (attempt 2)"
    assert failed["log_lines"] == 4
    assert failed["log_bytes"] == nbytes(log_lines(1, 3)) + len(notice["text"]) + 1


def test_retries_back_off_and_stop_after_the_last_attempt(db: Database) -> None:
    run = start_run(db, logged=1, retries=2, retry_delay_seconds=10, retry_backoff=3)
    first = conclude(db, run["id"], Status.FAILED, error_code="step_failed")
    assert first.retry_id is not None
    set_running(db, first.retry_id)
    second = conclude(db, first.retry_id, Status.FAILED, error_code="step_failed")
    assert second.retry_id is not None
    assert stored(db, second.retry_id)["attempt"] == 3
    assert logs(db, first.retry_id)[-1]["text"].endswith("in 30s (attempt 3)")
    assert logs(db, first.retry_id)[-1]["seq"] == 1  # the retry's own log starts afresh
    set_running(db, second.retry_id)
    last = conclude(db, second.retry_id, Status.FAILED, error_code="step_failed")
    assert last.status == Status.FAILED and last.retry_id is None
    with db.read() as conn:
        assert execution_store.active_for_job(conn, run["job_id"]) == []


def test_a_successful_run_is_not_retried(db: Database) -> None:
    run = start_run(db, retries=3)
    done = conclude(db, run["id"], Status.SUCCEEDED, result=RESULT)
    assert done.retry_id is None
    with db.read() as conn:
        assert execution_store.active_for_job(conn, run["job_id"]) == []


@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled", "timed_out"])
def test_concluding_an_ended_execution_changes_nothing(db: Database, final: str) -> None:
    run = start_run(db, logged=2, retries=3)
    with db.write() as conn:
        execution_store.transition(
            conn, run["id"], Status(final), [Status.RUNNING], finished_at=utcnow(), result=[1]
        )
    before = stored(db, run["id"])
    done = conclude(
        db, run["id"], Status.FAILED, result=RESULT, error_code="x", log_lines=log_lines(3, 1)
    )
    assert done == Concluded(run["id"], run["job_id"], None)
    assert stored(db, run["id"]) == before
    assert len(logs(db, run["id"])) == 2
    with db.read() as conn:
        assert execution_store.active_for_job(conn, run["job_id"]) == []


def test_concluding_a_queued_or_missing_execution_changes_nothing(db: Database) -> None:
    with db.write() as conn:
        queued = add_execution(conn, add_job(conn, add_project(conn)))
    assert conclude(db, queued["id"], Status.SUCCEEDED).status is None
    assert stored(db, queued["id"]) == queued
    assert conclude(db, "missing", Status.FAILED) == Concluded("missing", "", None)


def test_a_lost_worker_fails_the_run_and_its_running_step(db: Database) -> None:
    steps = [
        {"name": "extract", "kind": "command", "config": {"command": "echo a"}},
        {"name": "load", "kind": "command", "config": {"command": "echo b"}},
    ]
    run = start_run(db, logged=2, steps=steps)
    states = [
        {**run["steps"][0], "status": "succeeded"},
        {**run["steps"][1], "status": "running"},
    ]
    with db.write() as conn:
        execution_store.heartbeat(conn, run["id"], run["worker"], utcnow(), steps=states)
    done = conclude_lost(db, run["id"], "no heartbeat for 30s")
    assert done.status == Status.FAILED
    row = stored(db, run["id"])
    assert (row["error_code"], row["error_message"]) == ("worker_lost", "no heartbeat for 30s")
    assert [(s["status"], s["error"]) for s in row["steps"]] == [
        ("succeeded", None),
        ("failed", "worker_lost"),
    ]
    line = logs(db, run["id"])[-1]
    assert (line["seq"], line["level"], line["text"]) == (
        3,
        "error",
        "worker lost: no heartbeat for 30s",
    )


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # NOTIFY is PostgreSQL's
@pytest.mark.parametrize("claimed", [True, False], ids=["worker's path", "other path"])
def test_other_nodes_are_told_a_run_ended_once_it_commits(db: Database, claimed: bool) -> None:
    """Whichever way a run ends, listeners hear `final` with its id (the worker's path
    sends it from its UPDATE's RETURNING)."""
    heard: list[str] = []
    listener = notify.Listener(db.url)
    listener.subscribe("final", heard.append)
    listener.start()
    try:
        assert listener.connected.wait(10)
        run = start_run(db)
        conclude(
            db,
            run["id"],
            Status.SUCCEEDED,
            steps=run["steps"],
            claimed=stored(db, run["id"]) if claimed else None,
        )
        deadline = time.monotonic() + 10
        while run["id"] not in heard and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heard == [run["id"]]
    finally:
        listener.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # one statement: PostgreSQL's CTE
def test_a_usual_end_on_postgresql_is_one_statement_with_its_lines_and_notice(
    db: Database,
) -> None:
    run = start_run(db, logged=3)
    steps = [{**run["steps"][0], "status": "succeeded"}]
    last = [{**ln, "iteration": 7 if ln["seq"] == 4 else None} for ln in log_lines(4, 2)]
    last[1]["step"] = None
    heard: list[str] = []
    listener = notify.Listener(db.url)
    listener.subscribe("final", heard.append)
    listener.start()
    try:
        assert listener.connected.wait(10)
        done = conclude_alone(
            db,
            run["id"],
            Status.SUCCEEDED,
            result=RESULT,
            steps=steps,
            log_lines=last,
            log_bytes=nbytes(last),
            claimed=stored(db, run["id"]),
        )
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        listener.stop()
    assert done == Concluded(run["id"], run["job_id"], Status.SUCCEEDED)
    assert heard == [run["id"]]
    row, lines = stored(db, run["id"]), logs(db, run["id"])
    assert row["status"] == "succeeded" and row["result"] == RESULT and row["steps"] == steps
    assert [(ln["seq"], ln["step"], ln["iteration"]) for ln in lines[3:]] == [
        (4, "main", 7),
        (5, None, None),
    ]
    assert lines[3]["at"] == last[0]["at"] and lines[4]["text"] == last[1]["text"]
    assert (row["log_lines"], row["log_bytes"]) == (5, nbytes(log_lines(1, 5)))


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_an_end_that_is_not_the_usual_one_is_left_to_the_transaction(db: Database) -> None:
    """A cancel requested meanwhile, a retry to insert or a watermark to record: nothing is
    changed, and conclude() (in its transaction) decides."""
    cancelled = start_run(db, logged=1)
    with db.write() as conn:
        execution_store.transition(conn, cancelled["id"], Status.CANCELLING, [Status.RUNNING])
    retried = start_run(db, retries=2)
    for run, status in ((cancelled, Status.SUCCEEDED), (retried, Status.FAILED)):
        claimed = stored(db, run["id"])
        line = log_lines(claimed["log_lines"] + 1, 1)
        assert (
            conclude_alone(
                db,
                run["id"],
                status,
                steps=run["steps"],
                log_lines=line,
                log_bytes=nbytes(line),
                claimed=claimed,
            )
            is None
        )
        after = stored(db, run["id"])
        assert after["status"] == claimed["status"] and after["log_lines"] == claimed["log_lines"]
    long_end = start_run(db)
    many = log_lines(1, 201)  # more than one statement's parameters should carry
    assert (
        conclude_alone(
            db,
            long_end["id"],
            Status.SUCCEEDED,
            steps=long_end["steps"],
            log_lines=many,
            log_bytes=nbytes(many),
            claimed=stored(db, long_end["id"]),
        )
        is None
    )
    assert stored(db, long_end["id"])["status"] == "running" and logs(db, long_end["id"]) == []
    marked = start_run(db)
    result = {"watermarkAfter": "2026-12-01"}
    assert (
        conclude_alone(
            db,
            marked["id"],
            Status.SUCCEEDED,
            result=result,
            steps=marked["steps"],
            claimed=stored(db, marked["id"]),
        )
        is None
    )
    assert stored(db, marked["id"])["status"] == "running"
