"""Executions repository: inserts, compare-and-set transitions, lookups for the engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection

from jobport.domain.clock import utcnow
from jobport.domain.executions import Status
from jobport.domain.pages import Page
from jobport.errors import NotFound
from jobport.store import executions as execution_store
from jobport.store.db import Database

from .conftest import Sent
from .rows import add_execution, add_job, add_project, execution_row, running

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def job(db: Database) -> dict[str, Any]:
    with db.write() as conn:
        return add_job(conn, add_project(conn))


def other_job(conn: Connection, job: dict[str, Any]) -> dict[str, Any]:
    """A second job in the same project."""
    return add_job(conn, {"id": job["project_id"]})


def test_an_inserted_execution_reads_back_the_same(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn:
        row = add_execution(conn, job, parameters={"day": "monday"}, idempotency_key="k1")
    with db.read() as conn:
        stored = execution_store.get(conn, row["id"])
        assert execution_store.status_of(conn, row["id"]) == "queued"
        assert execution_store.find(conn, "missing") is None
        assert execution_store.status_of(conn, "missing") is None
        with pytest.raises(NotFound) as caught:
            execution_store.get(conn, "missing")
    assert stored == row
    assert caught.value.code == "execution_not_found"


def test_a_taken_execution_id_is_a_duplicate(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn:
        add_execution(conn, job, id="nightly-2026-03-01")
        with pytest.raises(execution_store.DuplicateExecution):
            add_execution(conn, job, id="nightly-2026-03-01")
        add_execution(conn, job)  # the failed insert did not spoil the transaction
    with db.read() as conn:
        assert len(execution_store.active_for_job(conn, job["id"])) == 2


def test_an_idempotency_key_is_unique_per_project(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn:
        first = add_execution(conn, job, idempotency_key="order-42")
        with pytest.raises(execution_store.DuplicateExecution):
            add_execution(conn, other_job(conn, job), idempotency_key="order-42")
        elsewhere = add_job(conn, add_project(conn))
        second = add_execution(conn, elsewhere, idempotency_key="order-42")
        add_execution(conn, job)  # executions without a key never collide
        add_execution(conn, job)
    with db.read() as conn:
        found = execution_store.find_by_idempotency_key(conn, job["project_id"], "order-42")
        assert found is not None and found["id"] == first["id"]
        found = execution_store.find_by_idempotency_key(conn, elsewhere["project_id"], "order-42")
        assert found is not None and found["id"] == second["id"]
        assert execution_store.find_by_idempotency_key(conn, job["project_id"], "other") is None


def test_transition_is_a_compare_and_set(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn:
        row = add_execution(conn, job)
    now = utcnow()
    with db.write() as conn:
        assert execution_store.transition(
            conn, row["id"], Status.RUNNING, [Status.QUEUED], worker="a", started_at=now
        )
    with db.write() as conn:
        assert not execution_store.transition(
            conn, row["id"], Status.RUNNING, [Status.QUEUED], worker="b", started_at=utcnow()
        )
    with db.read() as conn:
        stored = execution_store.get(conn, row["id"])
    assert (stored["status"], stored["worker"], stored["started_at"]) == ("running", "a", now)


def test_a_transition_from_a_wrong_status_changes_nothing(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        row = add_execution(conn, job)
        moved = execution_store.transition(
            conn,
            row["id"],
            Status.SUCCEEDED,
            [Status.RUNNING, Status.CANCELLING],
            result={"x": 1},
            finished_at=utcnow(),
        )
        assert not moved
        assert not execution_store.transition(conn, "missing", Status.RUNNING, [Status.QUEUED])
    with db.read() as conn:
        assert execution_store.get(conn, row["id"]) == row


def test_a_transition_accepts_any_of_the_expected_statuses(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        row = add_execution(conn, job, **running(status="cancelling"))
        expected = [Status.RUNNING, Status.CANCELLING]
        assert execution_store.transition(conn, row["id"], Status.CANCELLED, expected)
        assert execution_store.status_of(conn, row["id"]) == "cancelled"


def test_latest_for_jobs_picks_the_newest_execution_of_each_job(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        second = other_job(conn, job)
        idle = other_job(conn, job)
        for offset in range(3):
            add_execution(conn, job, created_at=T0 + dt.timedelta(minutes=offset))
        newest = add_execution(conn, job, created_at=T0 + dt.timedelta(minutes=5))
        only = add_execution(conn, second, status="succeeded")
    with db.read() as conn:
        latest = execution_store.latest_for_jobs(conn, [job["id"], second["id"], idle["id"]])
        assert execution_store.latest_for_jobs(conn, []) == {}
    assert set(latest) == {job["id"], second["id"]}
    assert latest[job["id"]] == newest
    assert latest[second["id"]]["id"] == only["id"]


def test_latest_for_jobs_goes_by_time_not_by_caller_given_ids(
    db: Database, job: dict[str, Any]
) -> None:
    """A caller may name an execution ("zz-manual"); a later generated id is still newer."""
    with db.write() as conn:
        add_execution(conn, job, id="zz-manual", created_at=T0)
        newer = add_execution(conn, job, created_at=T0 + dt.timedelta(minutes=1))
    with db.read() as conn:
        assert execution_store.latest_for_jobs(conn, [job["id"]])[job["id"]]["id"] == newer["id"]


def test_latest_for_jobs_breaks_a_tie_in_creation_time_by_id(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        for name in ("run-b", "run-c", "run-a"):
            add_execution(conn, job, id=name, created_at=T0)
    with db.read() as conn:
        assert execution_store.latest_for_jobs(conn, [job["id"]])[job["id"]]["id"] == "run-c"


def test_executions_are_listed_by_creation_time_whatever_their_ids(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        for minute, name in enumerate(["zz-first", "aa-second", "mm-third", "mm-fourth"]):
            add_execution(conn, job, id=name, created_at=T0 + dt.timedelta(minutes=minute // 2 * 2))
    first = page(db, job["project_id"], limit=3)
    rest = page(db, job["project_id"], limit=3, cursor=first.next_cursor)
    assert ids(first) + ids(rest) == ["mm-third", "mm-fourth", "zz-first", "aa-second"]
    assert rest.next_cursor is None


def test_active_for_job_lists_queued_running_and_cancelling(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        queued = add_execution(conn, job)
        run = add_execution(conn, job, **running())
        stopping = add_execution(conn, job, **running(status="cancelling"))
        for status in ("succeeded", "failed", "cancelled", "timed_out"):
            add_execution(conn, job, status=status)
        add_execution(conn, other_job(conn, job))
    with db.read() as conn:
        active = execution_store.active_for_job(conn, job["id"])
        assert execution_store.running_count(conn, job["id"]) == 2
        assert execution_store.first_active_in_project(conn, job["project_id"]) is not None
        assert execution_store.first_active_in_project(conn, "no-such-project") is None
    assert [r["id"] for r in active] == [queued["id"], run["id"], stopping["id"]]


def test_a_project_with_only_finished_runs_has_no_active_execution(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        add_execution(conn, job, status="succeeded")
    with db.read() as conn:
        assert execution_store.first_active_in_project(conn, job["project_id"]) is None


def page(db: Database, project_id: str, **filters: Any) -> Page:
    args: dict[str, Any] = {
        "job_id": None,
        "statuses": [],
        "created_after": None,
        "created_before": None,
        "cursor": None,
        "limit": 100,
    }
    args.update(filters)
    with db.read() as conn:
        return execution_store.list_page(conn, project_id, **args)


def ids(p: Page) -> list[str]:
    return [r["id"] for r in p.items]


@pytest.fixture
def history(db: Database, job: dict[str, Any]) -> dict[str, Any]:
    """Ten executions of two jobs, a minute apart, alternating succeeded/failed."""
    with db.write() as conn:
        second = other_job(conn, job)
        rows = [
            add_execution(
                conn,
                job if i % 3 else second,
                status="succeeded" if i % 2 else "failed",
                created_at=T0 + dt.timedelta(minutes=i),
            )
            for i in range(10)
        ]
        add_execution(conn, add_job(conn, add_project(conn)))  # another project's run
    return {"job": job, "second": second, "rows": rows}


def test_executions_are_listed_newest_first_across_pages(
    db: Database, history: dict[str, Any]
) -> None:
    expected = [r["id"] for r in reversed(history["rows"])]
    got, cursor = [], None
    for _ in range(4):
        p = page(db, history["job"]["project_id"], cursor=cursor, limit=4)
        got.append(ids(p))
        cursor = p.next_cursor
        if cursor is None:
            break
    assert got == [expected[:4], expected[4:8], expected[8:]]


def test_executions_are_filtered_by_job_status_and_creation_time(
    db: Database, history: dict[str, Any]
) -> None:
    rows, pid = history["rows"], history["job"]["project_id"]

    def newest_first(chosen: list[dict[str, Any]]) -> list[str]:
        return [r["id"] for r in reversed(chosen)]

    by_job = page(db, pid, job_id=history["second"]["id"])
    assert ids(by_job) == newest_first([rows[0], rows[3], rows[6], rows[9]])
    failed = page(db, pid, statuses=["failed"])
    assert ids(failed) == newest_first(rows[0::2])
    both = page(db, pid, statuses=["failed", "succeeded"], job_id=history["job"]["id"])
    assert ids(both) == newest_first([r for i, r in enumerate(rows) if i % 3])
    window = page(
        db,
        pid,
        created_after=T0 + dt.timedelta(minutes=2),  # inclusive
        created_before=T0 + dt.timedelta(minutes=5),  # exclusive
    )
    assert ids(window) == newest_first(rows[2:5])
    paged = page(db, pid, statuses=["succeeded"], limit=2)
    rest = page(db, pid, statuses=["succeeded"], limit=2, cursor=paged.next_cursor)
    assert ids(paged) + ids(rest) == newest_first(rows[1::2])[:4]
    assert page(db, pid, statuses=["queued"]).items == []


def test_stale_running_finds_executions_whose_heartbeat_stopped(
    db: Database, job: dict[str, Any]
) -> None:
    now = utcnow()
    old, fresh = now - dt.timedelta(minutes=5), now - dt.timedelta(seconds=5)
    with db.write() as conn:
        silent = add_execution(conn, job, **running(at=old))
        silent_cancelling = add_execution(conn, job, **running(at=old, status="cancelling"))
        never_beat = add_execution(conn, job, **running(at=old, heartbeat_at=None))
        add_execution(conn, job, **running(at=fresh))
        add_execution(conn, job, **running(at=old, heartbeat_at=fresh))
        add_execution(conn, job, created_at=old, not_before=old)  # queued, not running
        add_execution(conn, job, **running(at=old, status="failed"))
    with db.read() as conn:
        stale = execution_store.stale_running(conn, now - dt.timedelta(minutes=1))
        assert len(execution_store.stale_running(conn, now - dt.timedelta(minutes=1), limit=2)) == 2
    assert sorted(stale) == sorted([silent["id"], silent_cancelling["id"], never_beat["id"]])


def test_due_queued_follows_not_before(db: Database, job: dict[str, Any]) -> None:
    now = utcnow()
    with db.write() as conn:
        due = add_execution(conn, job, not_before=now - dt.timedelta(seconds=1))
        also_due = add_execution(conn, other_job(conn, job), not_before=now)
        add_execution(conn, job, not_before=now + dt.timedelta(seconds=30))
        add_execution(conn, job, not_before=now + dt.timedelta(hours=1))
        add_execution(conn, job, **running(), not_before=now - dt.timedelta(hours=1))
    with db.read() as conn:
        queued = execution_store.due_queued(conn, now)
        assert execution_store.queued_for_job(conn, job["id"], now, limit=10) == [due["id"]]
        assert len(execution_store.due_queued(conn, now, limit=1)) == 1
    assert [q["id"] for q in queued] == [due["id"], also_due["id"]]
    assert queued[0] == {"id": due["id"], "job_id": job["id"], "not_before": due["not_before"]}


def test_queued_for_job_is_oldest_first_and_limited(db: Database, job: dict[str, Any]) -> None:
    now = utcnow()
    with db.write() as conn:
        rows = [add_execution(conn, job, not_before=now) for _ in range(4)]
    with db.read() as conn:
        assert execution_store.queued_for_job(conn, job["id"], now, limit=3) == [
            r["id"] for r in rows[:3]
        ]


def test_held_by_lists_what_a_worker_runs(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn:
        mine = add_execution(conn, job, **running("node-a:1"))
        stopping = add_execution(conn, job, **running("node-a:1", status="cancelling"))
        add_execution(conn, job, **running("node-a:1", status="succeeded"))
        add_execution(conn, job, **running("node-b:1"))
    with db.read() as conn:
        assert sorted(execution_store.held_by(conn, "node-a:1")) == sorted(
            [mine["id"], stopping["id"]]
        )
        assert execution_store.held_by(conn, "node-c:1") == []


def test_heartbeat_returns_the_status_and_only_the_holder_beats(
    db: Database, job: dict[str, Any]
) -> None:
    start = utcnow() - dt.timedelta(minutes=1)
    with db.write() as conn:
        row = add_execution(conn, job, **running("node-a:1", at=start))
    beat_at = utcnow()
    steps = [{**row["steps"][0], "status": "running"}]
    with db.write() as conn:
        assert (
            execution_store.heartbeat(conn, row["id"], "node-a:1", beat_at, steps=steps)
            == "running"
        )
        assert execution_store.heartbeat(conn, row["id"], "node-b:1", utcnow()) == "running"
    with db.read() as conn:
        stored = execution_store.get(conn, row["id"])
    assert stored["heartbeat_at"] == beat_at  # the other worker's beat changed nothing
    assert stored["steps"] == steps
    with db.write() as conn:
        execution_store.transition(conn, row["id"], Status.CANCELLING, [Status.RUNNING])
        assert execution_store.heartbeat(conn, row["id"], "node-a:1", utcnow()) == "cancelling"
        assert execution_store.heartbeat(conn, "missing", "node-a:1", utcnow()) is None


def test_a_beat_that_lost_the_race_with_the_end_of_its_run_writes_nothing(
    db: Database, job: dict[str, Any]
) -> None:
    with db.write() as conn:
        row = add_execution(conn, job, **running("node-a:1"))
        execution_store.transition(conn, row["id"], Status.SUCCEEDED, [Status.RUNNING])
    with db.read() as conn:
        final = execution_store.get(conn, row["id"])
    late = [{**row["steps"][0], "status": "running"}]
    with db.write() as conn:
        status = execution_store.heartbeat(conn, row["id"], "node-a:1", utcnow(), steps=late)
    assert status == "succeeded"  # the worker learns the run is over
    with db.read() as conn:
        assert execution_store.get(conn, row["id"]) == final


def test_lock_job_works_inside_a_write(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn:
        execution_store.lock_job(conn, job["id"])
        add_execution(conn, job)


def test_execution_rows_round_trip_json_and_times(db: Database, job: dict[str, Any]) -> None:
    result = {"schema": [{"name": "n", "type": "integer"}], "records": [{"n": 1}], "ü": [None]}
    at = dt.datetime(2026, 3, 1, 23, 59, 59, 123456, tzinfo=dt.timezone(dt.timedelta(hours=10)))
    with db.write() as conn:
        row = add_execution(conn, job, status="succeeded", result=result, finished_at=at)
    with db.read() as conn:
        stored = execution_store.get(conn, row["id"])
    assert stored["result"] == result
    assert stored["finished_at"] == at and stored["finished_at"].tzinfo == dt.UTC


def test_naive_datetimes_are_refused(db: Database, job: dict[str, Any]) -> None:
    with db.write() as conn, pytest.raises(Exception, match="naive datetime"):
        execution_store.insert_execution(
            conn, execution_row(job, created_at=dt.datetime(2026, 1, 1))
        )


def test_several_statuses_are_listed_merged_newest_first_across_pages(
    db: Database, job: dict[str, Any]
) -> None:
    statuses = ["succeeded", "failed", "queued"]
    with db.write() as conn:
        rows = [
            add_execution(
                conn, job, status=statuses[i % 3], created_at=T0 + dt.timedelta(minutes=i)
            )
            for i in range(11)
        ]
    wanted = [r["id"] for r in reversed(rows) if r["status"] in ("queued", "failed")]
    got, cursor = [], None
    for _ in range(10):
        p = page(db, job["project_id"], statuses=["queued", "failed"], cursor=cursor, limit=3)
        got += ids(p)
        cursor = p.next_cursor
        if cursor is None:
            break
    assert got == wanted
    assert len(wanted) == 7


def test_the_queues_of_runs_still_queued(db: Database) -> None:
    """What the Celery publisher reads for each batch: each run's job queue ("default"
    when the job names none), for the runs still queued only."""
    with db.write() as conn:
        project = add_project(conn)
        named = add_job(conn, project, queue="etl-heavy")
        plain = add_job(conn, project)
        first, second = add_execution(conn, named), add_execution(conn, plain)
        started = add_execution(conn, named, **running())
        queues = execution_store.queues_of_queued(
            conn, [first["id"], second["id"], started["id"], "no-such-run"]
        )
    assert queues == {first["id"]: "etl-heavy", second["id"]: "default"}


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_statements_that_find_a_run_by_id_use_the_primary_key_whatever_is_queued(
    db: Database, sent_to_postgres: list[Sent]
) -> None:
    """PostgreSQL's statistics usually say that no run is queued or running. With them, a
    claim (`id = ... AND status = 'queued' AND not_before <= ...`) was planned on
    ix_executions_status_not_before and read the entry of every queued run, dead ones
    included: a backlog of N runs cost N per claim. Each statement that finds a run by its
    id is planned here, with such statistics and a backlog, and must take the primary key."""
    from sqlalchemy import text

    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)
        for _ in range(300):
            add_execution(conn, job, status="succeeded", finished_at=utcnow())
    with db.write() as conn:
        conn.execute(text("ANALYZE executions"))
    with db.write() as conn:
        backlog = [add_execution(conn, job) for _ in range(300)]
        runs = [add_execution(conn, job, **running("w:1")) for _ in range(3)]
    sent_to_postgres.clear()
    now, values = utcnow(), {"result": None, "error_code": None, "error_message": None}
    ended = {"finished_at": now, "steps": [], **values}
    with db.write() as conn:
        execution_store.claim_unlimited(conn, backlog[0]["id"], "w:1", now)
        execution_store.claim_due(conn, backlog[1]["id"], "w:1", now)
        execution_store.queues_of_queued(conn, [backlog[2]["id"], backlog[3]["id"]])
        execution_store.heartbeat(conn, runs[0]["id"], "w:1", now)
        execution_store.transition(
            conn, backlog[4]["id"], Status.CANCELLED, [Status.QUEUED], finished_at=now
        )
        execution_store.finish_running(
            conn, runs[1]["id"], Status.SUCCEEDED, log_counts=(0, 0), **ended
        )
        execution_store.finish_with_lines(conn, runs[2]["id"], Status.SUCCEEDED, ended, [], 0)
    by_id = [s for s in sent_to_postgres if "executions.id = " in s.sql or "WHERE id = " in s.sql]
    assert len(by_id) >= 7, [s.sql for s in sent_to_postgres]
    with db.read() as conn:
        raw = conn.connection.dbapi_connection
        for sent in by_id:
            plan = "\n".join(row[0] for row in raw.execute(f"EXPLAIN {sent.sql}", sent.params))
            assert "pk_executions" in plan, f"{sent.sql}\n{plan}"
            assert "ix_executions_status_not_before" not in plan, f"{sent.sql}\n{plan}"


def test_a_batch_insert_stores_what_a_single_insert_stores(db: Database) -> None:
    """insert_executions() runs on the driver's cursor (store/driver.py) when the rows have
    the same columns, and through SQLAlchemy otherwise: either way each run reads back as
    one inserted alone does."""
    with db.write() as conn:
        job = add_job(conn, add_project(conn), parameters={"day": "mon"})
    alone = execution_row(job, context={"from": "ci", "n": [1, 2]})
    batch = [execution_row(job, context={"from": "ci", "n": [1, 2]}) for _ in range(3)]
    odd = [execution_row(job) for _ in range(2)]  # `attempt` left to its column's default
    for row in odd:
        row.pop("attempt")
    with db.write() as conn:
        execution_store.insert_execution(conn, alone)
        execution_store.insert_executions(conn, batch)
        execution_store.insert_executions(conn, odd)
    with db.read() as conn:
        want = execution_store.find(conn, alone["id"])
        got = [execution_store.find(conn, row["id"]) for row in batch + odd]
    assert all(row is not None for row in got)
    differ = {"id", "object_id", "created_at", "not_before", "context"}
    for row in got:
        assert {k: v for k, v in row.items() if k not in differ} == {
            k: v for k, v in want.items() if k not in differ
        }
        assert row["created_at"].tzinfo is not None
    assert [r["context"] for r in got] == [{"from": "ci", "n": [1, 2]}] * 3 + [None] * 2
