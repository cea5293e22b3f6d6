"""Retention on both stores: what a pass removes (old ended runs with their log lines and
items, runs beyond the last N of a job, logs alone past logDays), what it never touches
(active runs), per-job policies over the server's, the dry run's counts, small batches."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import Connection, func, insert, select

from jobport.domain.clock import utcnow
from jobport.domain.ids import object_id
from jobport.services import retention
from jobport.settings import Settings
from jobport.store import logs as log_store
from jobport.store.db import Database
from jobport.store.tables import execution_items, execution_logs, executions

from .rows import add_job, add_project, execution_row, log_lines, nbytes

NOW = utcnow()


def settings(**values: Any) -> Settings:
    values = {"retention_days": 90, "retention_runs_per_job": 0, "log_retention_days": 30, **values}
    return Settings(database_url="sqlite://", **values)


def add_execution(conn: Connection, job: dict[str, Any], **values: Any) -> dict[str, Any]:
    """A run's row as the services write it, with `values` over it (a plain insert: the
    store's own insert is the hot path, and not what is tested here)."""
    row = execution_row(job, **values)
    conn.execute(insert(executions).values(object_id=object_id(row["id"]), **row))
    return row


def ended(
    conn: Connection,
    job: dict[str, Any],
    days_ago: float,
    *,
    lines: int = 3,
    items: int = 0,
    status: str = "succeeded",
) -> str:
    """A run that ended `days_ago`, with `lines` log lines and `items` foreach items."""
    at = NOW - dt.timedelta(days=days_ago)
    row = add_execution(
        conn, job, status=status, created_at=at, started_at=at, finished_at=at, worker="w:1"
    )
    if lines:
        batch = log_lines(1, lines)
        log_store.append(conn, row["id"], batch, nbytes(batch))
    if items:
        conn.execute(
            insert(execution_items),
            [
                {"execution_id": row["id"], "idx": i, "item": {"n": i}, "status": "succeeded"}
                for i in range(items)
            ],
        )
    return str(row["id"])


def ids(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(executions.c.id)).scalars())


def count(db: Database, table: Any, execution_id: str | None = None) -> int:
    query = select(func.count()).select_from(table)
    if execution_id is not None:
        query = query.where(table.c.execution_id == execution_id)
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())


def test_old_ended_runs_go_with_their_logs_and_items_and_recent_ones_stay(db: Database) -> None:
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
        old = [ended(conn, job, 100, lines=5, items=2), ended(conn, job, 91, status="failed")]
        kept = ended(conn, job, 10, lines=4)

    pruned = retention.prune(db, settings())

    assert ids(db) == {kept}
    assert (pruned.runs, pruned.log_lines, pruned.items, pruned.logs) == (2, 8, 2, 0)
    assert count(db, execution_logs) == 4 and count(db, execution_items) == 0
    for gone in old:
        assert count(db, execution_logs, gone) == 0
    assert not retention.prune(db, settings())  # nothing is left to do


def test_active_runs_are_never_pruned_however_old(db: Database) -> None:
    long_ago = NOW - dt.timedelta(days=400)
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
        active = set()
        for status in ("queued", "running", "cancelling"):
            # finished_at set too: even a row that looks ended by time stays while active
            row = add_execution(conn, job, status=status, created_at=long_ago, finished_at=long_ago)
            batch = log_lines(1, 2)
            log_store.append(conn, row["id"], batch, nbytes(batch))
            active.add(row["id"])

    dry = retention.count(db, settings(retention_runs_per_job=1, log_retention_days=1))
    pruned = retention.prune(db, settings(retention_runs_per_job=1, log_retention_days=1))

    assert not dry and not pruned
    assert ids(db) == active
    assert count(db, execution_logs) == 6


def test_only_the_last_n_ended_runs_of_each_job_stay(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        busy, quiet = add_job(conn, project), add_job(conn, project)
        runs = [ended(conn, busy, days_ago=d) for d in (5, 4, 3, 2, 1)]
        queued = add_execution(conn, busy)["id"]
        lone = ended(conn, quiet, days_ago=6)

    pruned = retention.prune(db, settings(retention_runs_per_job=3))

    assert pruned.runs == 2
    assert ids(db) == {*runs[2:], queued, lone}


def test_a_jobs_policy_overrides_the_servers(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        forever = add_job(conn, project, retention={"days": 0, "logDays": 0})
        short = add_job(conn, project, retention={"days": 2, "runs": 1})
        default = add_job(conn, project)
        kept_forever = ended(conn, forever, 400, lines=2)
        short_runs = [ended(conn, short, 3), ended(conn, short, 1.5), ended(conn, short, 1)]
        default_runs = [
            ended(conn, default, 100),
            ended(conn, default, 40),
            ended(conn, default, 1),
        ]

    pruned = retention.prune(db, settings())

    # short: 3 days is past its 2 days; of the other two only the newest is in its last 1
    assert ids(db) == {kept_forever, short_runs[2], default_runs[1], default_runs[2]}
    assert pruned.runs == 3 and pruned.logs == 1
    assert count(db, execution_logs, kept_forever) == 2  # logDays 0: kept with the run
    assert count(db, execution_logs, default_runs[1]) == 0  # 40 days: past the server's 30


def test_logs_alone_go_after_log_days_and_the_run_says_so(db: Database) -> None:
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
        quiet = ended(conn, job, 40, lines=7, items=3)
        recent = ended(conn, job, 20, lines=2)

    pruned = retention.prune(db, settings())

    assert (pruned.runs, pruned.log_lines, pruned.logs, pruned.items) == (0, 7, 1, 0)
    assert ids(db) == {quiet, recent}
    assert count(db, execution_logs, quiet) == 0 and count(db, execution_items, quiet) == 3
    assert count(db, execution_logs, recent) == 2
    with db.read() as conn:
        row = conn.execute(select(executions).where(executions.c.id == quiet)).one()
    assert row.logs_pruned_at is not None and row.log_lines == 7  # how many it had
    assert not retention.prune(db, settings())  # done once, not again each pass


def test_a_dry_run_removes_nothing_and_counts_what_the_pass_then_removes(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        job, capped = add_job(conn, project), add_job(conn, project, retention={"runs": 2})
        for days_ago in (120, 95, 60, 45, 31, 5):
            ended(conn, job, days_ago, lines=int(days_ago), items=days_ago % 3)
        for days_ago in (9, 8, 7, 6):
            ended(conn, capped, days_ago, lines=10, items=1)
    before = (ids(db), count(db, execution_logs), count(db, execution_items))

    dry = retention.count(db, settings())

    assert (ids(db), count(db, execution_logs), count(db, execution_items)) == before
    pruned = retention.prune(db, settings())
    assert (dry.runs, dry.log_lines, dry.items, dry.logs) == (
        pruned.runs,
        pruned.log_lines,
        pruned.items,
        pruned.logs,
    )
    assert (pruned.runs, pruned.logs) == (4, 3)
    assert pruned.log_lines == 120 + 95 + 60 + 45 + 31 + 10 + 10


def test_a_pass_works_in_small_transactions(db: Database) -> None:
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
        for _ in range(50):  # 50 runs of 99 lines: 5,000 rows
            ended(conn, job, 100, lines=99)
        huge = ended(conn, job, 100, lines=1_200)  # one run's log alone spans three batches
        many = ended(conn, job, 100, lines=10, items=1_100)  # its items span three more
        ended(conn, job, 100, lines=10)

    pruned = retention.prune(db, settings(prune_batch=500))

    assert pruned.runs == 53 and pruned.items == 1_100
    assert pruned.log_lines == 50 * 99 + 1_200 + 2 * 10
    assert pruned.transactions >= (50 * 100 + 1_201 + 1_111 + 11) // 500
    assert not {huge, many} & ids(db)
    assert count(db, execution_logs) == count(db, execution_items) == 0


def test_a_pass_stops_when_its_time_is_up_and_the_next_goes_on(db: Database) -> None:
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
        for _ in range(20):
            ended(conn, job, 100, lines=10)

    first = retention.prune(db, settings(prune_batch=10), seconds=0)
    assert not first.complete and first.runs == 0
    rest = retention.prune(db, settings(prune_batch=10))
    assert rest.complete and rest.runs == 20


def test_two_pruners_at_once_remove_each_run_once(db: Database) -> None:
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
        for _ in range(60):
            ended(conn, job, 100, lines=20)
    results: list[retention.Pruned] = []

    def one() -> None:
        results.append(retention.prune(db, settings(prune_batch=50)))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sum(r.runs for r in results) == 60
    assert sum(r.log_lines for r in results) == 60 * 20
    assert ids(db) == set() and count(db, execution_logs) == 0
