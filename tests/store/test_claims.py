"""Claims under contention: one winner per execution, and maxConcurrent holds across racers."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from jobport.domain.clock import utcnow
from jobport.domain.executions import Status
from jobport.engine.worker import Claim, claim
from jobport.store import executions as execution_store
from jobport.store.db import Database

from .conftest import Sent
from .rows import add_execution, add_job, add_project

RACERS = 8


def race(calls: list[Callable[[], Claim]]) -> list[Claim]:
    """Run every call at the same moment, each on its own thread."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], Claim]) -> Claim:
        barrier.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


@pytest.fixture
def wide_race(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pause after each read a claim decides on, so racing claims all read before any writes.

    Without it the claims are so short that threads rarely overlap, and a claim without its
    compare-and-set (or without the job lock) would still pass.
    """
    for name in ("find", "running_count"):
        real = getattr(execution_store, name)

        def slow(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            value = _real(*args, **kwargs)
            time.sleep(0.03)
            return value

        monkeypatch.setattr(execution_store, name, slow)


def new_job(db: Database, **spec: Any) -> dict[str, Any]:
    with db.write() as conn:
        return add_job(conn, add_project(conn), **spec)


def test_only_one_of_many_workers_claims_an_execution(db: Database, wide_race: None) -> None:
    job = new_job(db)
    for _ in range(2):
        with db.write() as conn:
            execution = add_execution(conn, job)
        workers = [f"node-{i}:1" for i in range(RACERS)]
        claims = race([lambda w=w, e=execution["id"]: claim(db, e, w) for w in workers])
        winners = [c for c in claims if c.reason == "claimed"]
        assert len(winners) == 1
        assert sorted(c.reason for c in claims if c.reason != "claimed") == ["gone"] * (RACERS - 1)
        won = winners[0].execution
        assert won is not None and won["status"] == "running"
        with db.read() as conn:
            stored = execution_store.get(conn, execution["id"])
        assert (stored["status"], stored["worker"]) == ("running", won["worker"])
        assert stored["started_at"] is not None and stored["heartbeat_at"] is not None


def test_max_concurrent_one_lets_only_one_of_two_queued_runs_start(
    db: Database, wide_race: None
) -> None:
    job = new_job(db, max_concurrent=1)
    assert job["spec"]["maxConcurrent"] == 1
    for _ in range(2):
        with db.write() as conn:
            first, second = add_execution(conn, job), add_execution(conn, job)
        claims = race(
            [
                lambda e=first["id"]: claim(db, e, "node-a:1"),
                lambda e=second["id"]: claim(db, e, "node-b:1"),
            ]
        )
        assert sorted(c.reason for c in claims) == ["blocked", "claimed"]
        with db.read() as conn:
            assert execution_store.running_count(conn, job["id"]) == 1
            blocked = next(c for c in claims if c.reason == "blocked")
            assert blocked.execution is None
        # finish the winner so the next round starts from an idle job
        with db.write() as conn:
            for row in (first, second):
                execution_store.transition(conn, row["id"], Status.SUCCEEDED, [Status.RUNNING])
                execution_store.transition(conn, row["id"], Status.CANCELLED, [Status.QUEUED])


def test_max_concurrent_two_admits_exactly_two_of_many(db: Database, wide_race: None) -> None:
    job = new_job(db, max_concurrent=2)
    with db.write() as conn:
        rows = [add_execution(conn, job) for _ in range(6)]
    claims = race([lambda r=r: claim(db, r["id"], f"node-{r['id']}") for r in rows])
    assert sorted(c.reason for c in claims) == ["blocked"] * 4 + ["claimed"] * 2
    with db.read() as conn:
        assert execution_store.running_count(conn, job["id"]) == 2


def test_a_blocked_run_is_claimed_once_the_running_one_ends(db: Database) -> None:
    job = new_job(db, max_concurrent=1)
    with db.write() as conn:
        first, second = add_execution(conn, job), add_execution(conn, job)
    assert claim(db, first["id"], "node-a:1").reason == "claimed"
    assert claim(db, second["id"], "node-b:1").reason == "blocked"
    with db.write() as conn:
        execution_store.transition(conn, first["id"], Status.SUCCEEDED, [Status.RUNNING])
    assert claim(db, second["id"], "node-b:1").reason == "claimed"


def test_a_claim_waits_for_not_before_and_ignores_what_is_not_queued(db: Database) -> None:
    job = new_job(db)
    later = utcnow() + dt.timedelta(minutes=5)
    with db.write() as conn:
        future = add_execution(conn, job, not_before=later)
        done = add_execution(conn, job, status="cancelled")
    assert claim(db, future["id"], "node-a:1") == Claim(None, "not_due", future["not_before"])
    assert claim(db, done["id"], "node-a:1") == Claim(None, "gone")
    assert claim(db, "missing", "node-a:1") == Claim(None, "gone")
    with db.read() as conn:
        assert execution_store.status_of(conn, future["id"]) == "queued"


def test_a_claim_sets_every_step_pending(db: Database) -> None:
    steps = [
        {"name": "extract", "kind": "command", "config": {"command": "echo a"}},
        {"name": "load", "kind": "command", "config": {"command": "echo b"}, "needs": ["extract"]},
    ]
    job = new_job(db, steps=steps)
    with db.write() as conn:
        execution = add_execution(conn, job)
    got = claim(db, execution["id"], "node-a:1")
    assert got.execution is not None
    with db.read() as conn:
        stored = execution_store.get(conn, execution["id"])
    assert [(s["name"], s["status"]) for s in stored["steps"]] == [
        ("extract", "pending"),
        ("load", "pending"),
    ]
    assert stored["steps"] == got.execution["steps"]


def test_max_concurrent_admits_the_oldest_queued_run_first(db: Database) -> None:
    """Two workers handed a job's runs at once: the younger does not take the one place."""
    job = new_job(db, max_concurrent=1)
    with db.write() as conn:
        first, second = add_execution(conn, job), add_execution(conn, job)
    assert claim(db, second["id"], "node-b:1").reason == "blocked"
    assert claim(db, first["id"], "node-a:1").reason == "claimed"
    with db.write() as conn:
        execution_store.transition(conn, first["id"], Status.SUCCEEDED, [Status.RUNNING])
    assert claim(db, second["id"], "node-b:1").reason == "claimed"


def test_the_one_statement_claim_takes_only_due_runs_of_jobs_without_a_limit(
    db: Database,
) -> None:
    free, limited = new_job(db), new_job(db, maxConcurrent=3)
    with db.write() as conn:
        due = add_execution(conn, free)
        later = add_execution(conn, free, not_before=utcnow() + dt.timedelta(hours=1))
        held = add_execution(conn, limited)
    with db.write() as conn:
        now = utcnow()
        row = execution_store.claim_unlimited(conn, due["id"], "w:1", now)
        assert row is not None and row["status"] == "running" and row["worker"] == "w:1"
        assert execution_store.claim_unlimited(conn, later["id"], "w:1", now) is None
        assert execution_store.claim_unlimited(conn, held["id"], "w:1", now) is None
        assert execution_store.claim_unlimited(conn, due["id"], "w:2", now) is None  # taken
        assert execution_store.find(conn, held["id"])["status"] == "queued"


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # SQLite writes BEGIN IMMEDIATE
def test_on_postgresql_a_run_without_a_limit_is_claimed_without_a_transaction(
    db: Database, sent_to_postgres: list[Sent]
) -> None:
    """One round trip (its UPDATE in autocommit) rather than BEGIN, UPDATE, COMMIT; a
    limited run tries that, then takes the transaction its count and lock need."""
    free, limited = new_job(db), new_job(db, maxConcurrent=1)
    with db.write() as conn:
        first, second = add_execution(conn, free), add_execution(conn, limited)

    def autocommits() -> list[bool]:
        return [s.autocommit for s in sent_to_postgres if s.sql.startswith("UPDATE executions")]

    assert claim(db, first["id"], "w:1").reason == "claimed"
    assert autocommits() == [True]
    sent_to_postgres.clear()
    assert claim(db, second["id"], "w:1").reason == "claimed"
    assert autocommits() == [True, False]
