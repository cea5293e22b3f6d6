"""A worker that finds the next run waiting claims it in the transaction that ends this one.

One write per run instead of two, and nothing lost or run twice on the way: a claim that
cannot be made there (over maxConcurrent, an error) leaves the run as it was for the usual
claim, and an id taken from the queue is never dropped, whatever the run did.
"""

from __future__ import annotations

import queue
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from jobport.domain.executions import Status
from jobport.engine import runner
from jobport.engine import worker as worker_module
from jobport.engine.executors import local
from jobport.engine.runner import Outcome
from jobport.engine.worker import Claim, Ran, Worker, claim
from jobport.settings import Settings
from jobport.store import executions as execution_store
from jobport.store.db import Database

sys.path.insert(0, str(Path(__file__).parent.parent / "store"))
from rows import add_execution, add_job, add_project

NOOP = [{"name": "go", "kind": "python", "config": {"callable": "jobport.demo:noop"}}]


def new_job(db: Database, **spec: Any) -> dict[str, Any]:
    with db.write() as conn:
        return add_job(conn, add_project(conn), steps=NOOP, **spec)


def queued(db: Database, job: dict[str, Any], n: int = 1, **overrides: Any) -> list[str]:
    with db.write() as conn:
        return [add_execution(conn, job, **overrides)["id"] for _ in range(n)]


def status(db: Database, execution_id: str) -> str:
    with db.read() as conn:
        row = execution_store.find(conn, execution_id)
    assert row is not None
    return row["status"]


def commits(db: Database) -> list[int]:
    counted = [0]

    @event.listens_for(db.engine, "commit")
    def _count(_conn: Any) -> None:
        counted[0] += 1

    return counted


def test_the_next_run_is_claimed_in_the_write_that_ends_this_one(sqlite: Database) -> None:
    first, second = queued(sqlite, new_job(sqlite), 2)
    worker = Worker("test:1", Settings(database_url=sqlite.url), sqlite)
    counted = commits(sqlite)
    ran = worker.run(first, following=lambda: second)
    assert counted == [2]  # the first's claim; its end with the second's claim
    assert ran.done is not None and ran.done.status == Status.SUCCEEDED
    assert ran.next_id == second and ran.next_claim is not None
    assert ran.next_claim.execution is not None and ran.next_claim.execution["id"] == second
    assert status(sqlite, first) == "succeeded" and status(sqlite, second) == "running"
    with sqlite.read() as conn:
        ended, started = (execution_store.find(conn, i) for i in (first, second))
    assert ended is not None and started is not None
    assert started["started_at"] >= ended["finished_at"]  # maxConcurrent: 1 holds
    counted[0] = 0
    then = worker.run(second, claimed=ran.next_claim)
    assert counted == [1]  # two runs, three writes (four before)
    assert then.done is not None and then.done.status == Status.SUCCEEDED


def test_a_next_run_over_its_jobs_limit_stays_queued_and_this_run_still_ends(
    sqlite: Database,
) -> None:
    limited = new_job(sqlite, maxConcurrent=1)
    (holding,) = queued(sqlite, limited)
    assert claim(sqlite, holding, "other:1").execution is not None  # its one place, taken
    (waiting,) = queued(sqlite, limited)
    (this,) = queued(sqlite, new_job(sqlite))
    worker = Worker("test:1", Settings(database_url=sqlite.url), sqlite)
    ran = worker.run(this, following=lambda: waiting)
    assert ran.done is not None and ran.done.status == Status.SUCCEEDED
    assert ran.next_claim == Claim(None, "blocked")
    # Only the claim was undone (its savepoint): this run's end is committed.
    assert status(sqlite, this) == "succeeded" and status(sqlite, waiting) == "queued"


def test_a_next_run_not_due_yet_is_said_so(sqlite: Database) -> None:
    import datetime as dt

    from jobport.domain.clock import utcnow

    job = new_job(sqlite)
    (later,) = queued(sqlite, job, not_before=utcnow() + dt.timedelta(hours=1))
    (this,) = queued(sqlite, job)
    worker = Worker("test:1", Settings(database_url=sqlite.url), sqlite)
    ran = worker.run(this, following=lambda: later)
    assert ran.next_claim is not None and ran.next_claim.reason == "not_due"
    assert status(sqlite, later) == "queued"


def test_a_claim_that_fails_beside_an_end_leaves_the_run_to_the_usual_claim(
    sqlite: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = queued(sqlite, new_job(sqlite), 2)
    worker = Worker("test:1", Settings(database_url=sqlite.url), sqlite)
    real = worker_module.claim_in

    def broken(conn: Any, execution_id: str, *args: Any) -> Claim:
        if execution_id == second:
            real(conn, execution_id, *args)  # its UPDATE is made, then undone
            raise RuntimeError("a bug in the claim")
        return real(conn, execution_id, *args)

    monkeypatch.setattr(worker_module, "claim_in", broken)
    ran = worker.run(first, following=lambda: second)
    assert ran.done is not None and ran.done.status == Status.SUCCEEDED
    assert ran.next_id == second and ran.next_claim is None
    assert status(sqlite, first) == "succeeded" and status(sqlite, second) == "queued"


def test_no_next_run_is_taken_after_a_stuck_step(
    sqlite: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process ends after it: a run claimed then would wait to be declared lost."""
    (this,) = queued(sqlite, new_job(sqlite))
    monkeypatch.setattr(
        runner.Run,
        "execute",
        lambda self: Outcome(Status.CANCELLED, None, "cancelled", "cancelled", [], stuck=True),
    )
    asked: list[int] = []
    worker = Worker("test:1", Settings(database_url=sqlite.url), sqlite)
    ran = worker.run(this, following=lambda: asked.append(1) or None)
    assert ran.stuck and asked == [] and ran.next_id is None


class FakeWorker:
    """Worker.run as _serve sees it: takes the next id, then fails or succeeds."""

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.ran: list[tuple[str, Claim | None]] = []

    def run(self, execution_id: str, *, claimed: Any = None, following: Any = None) -> Ran:
        self.ran.append((execution_id, claimed))
        next_id = following()
        if execution_id in self.fail:
            raise RuntimeError("the database went away")
        done = worker_module.Concluded(execution_id, "job", Status.SUCCEEDED)
        got = Claim({"id": execution_id}, "claimed")
        next_claim = Claim({"id": next_id}, "claimed") if next_id else None
        return Ran(got, done, False, next_id, next_claim)


def serve(tasks: list[str | None], fail: set[str]) -> tuple[FakeWorker, list[tuple[Any, ...]]]:
    q: queue.Queue[str | None] = queue.Queue()
    for task in tasks:
        q.put(task)
    events: queue.Queue[tuple[Any, ...]] = queue.Queue()
    fake = FakeWorker(fail)
    fake.name = "fake:1"  # type: ignore[attr-defined]
    local._serve(fake, q, events)
    return fake, [events.get() for _ in range(events.qsize())]


def test_serve_runs_an_id_it_took_for_next_even_when_the_run_before_failed() -> None:
    fake, events = serve(["a", "b", "c", None], fail={"a"})
    # a failed after taking b: b is run next, claimed as usual (no claim handed to it).
    assert fake.ran == [("a", None), ("b", None), ("c", Claim({"id": "c"}, "claimed"))]
    assert [e[:2] for e in events] == [
        ("ready", "fake:1"),
        ("lost", "a"),
        ("finished", "b"),
        ("finished", "c"),
    ]


def test_serve_stops_after_the_run_when_it_took_the_stop_for_next() -> None:
    fake, events = serve(["a", None, "never"], fail=set())
    assert fake.ran == [("a", None)]
    assert [e[:2] for e in events] == [("ready", "fake:1"), ("finished", "a")]
