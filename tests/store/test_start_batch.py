"""Group commit of starts (services/starts.py): one transaction for many requests' runs, and
every caller still gets exactly the answer (or the error) it would have had alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select

from jobport.domain.executions import StartRequest, Trigger
from jobport.errors import Conflict, Invalid, NotFound
from jobport.services.runtime import Runtime
from jobport.services.starts import StartQueue
from jobport.settings import Settings
from jobport.store.db import Database
from jobport.store.tables import executions

from .rows import add_job, add_project


def request(**fields: Any) -> StartRequest:
    return StartRequest(trigger=Trigger.API, **fields)


def count_commits(db: Database) -> list[int]:
    commits = [0]

    @event.listens_for(db.engine, "commit")
    def _commit(_conn: Any) -> None:
        commits[0] += 1

    return commits


def runs_of(db: Database, job_id: str) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(executions).where(executions.c.job_id == job_id)
            ).scalar_one()
        )


async def queued_then_committed(
    queue: StartQueue, starts: list[tuple[str, str, StartRequest]]
) -> list[Any]:
    """Queue every start first, then let the writer run: they form one batch."""
    tasks = [asyncio.create_task(queue.start(*one)) for one in starts]
    await asyncio.sleep(0)  # each task has put its start on the queue
    queue.start_threads()
    try:
        return await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.to_thread(queue.stop)


def test_many_starts_commit_in_one_transaction(db: Database) -> None:
    rt = Runtime(Settings(database_url=db.url), db)
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)
    commits = count_commits(db)
    queue = StartQueue(rt, writers=1)
    results = asyncio.run(
        queued_then_committed(queue, [(project["name"], job["name"], request())] * 40)
    )
    assert commits == [1]
    assert all(created for _, created in results)
    assert len({execution.id for execution, _ in results}) == 40
    assert runs_of(db, job["id"]) == 40


def test_a_refused_start_fails_alone_and_the_others_of_its_batch_are_stored(
    db: Database,
) -> None:
    rt = Runtime(Settings(database_url=db.url), db)
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project, parameters={"day": "today"})
        lone = add_job(conn, project, concurrencyPolicy="forbid")
    p, j = project["name"], job["name"]
    starts = [
        (p, j, request(parameters={"day": "monday"})),
        (p, "no-such-job", request()),
        (p, j, request(parameters={"nope": 1})),
        (p, j, request(execution_id="caller-1")),
        (p, j, request(execution_id="caller-1")),  # the same id twice in one batch
        (p, j, request(idempotency_key="key-1")),
        (p, j, request(idempotency_key="key-1")),
        (p, lone["name"], request()),
        (p, lone["name"], request()),  # forbid: the second sees the first
        (p, j, request(mode="sideways")),
        (p, j, request()),
    ]
    results = asyncio.run(queued_then_committed(StartQueue(rt, writers=1), starts))

    first, unknown, bad_param, id_1, id_again, key_1, key_again, lone_1, lone_2, mode, last = (
        results
    )
    assert first[1] is True and first[0].parameters == {"day": "monday"}
    assert isinstance(unknown, NotFound) and unknown.code == "job_not_found"
    assert isinstance(bad_param, Invalid) and bad_param.code == "unknown_parameter"
    assert id_1 == (id_1[0], True) and id_1[0].id == "caller-1"
    assert id_again[1] is False and id_again[0].id == "caller-1"
    assert key_1[1] is True and key_again == (key_again[0], False)
    assert key_again[0].id == key_1[0].id
    assert lone_1[1] is True
    assert isinstance(lone_2, Conflict) and lone_2.code == "already_running"
    assert isinstance(mode, Invalid) and mode.code == "invalid_mode"
    assert last[1] is True
    # Stored: first, caller-1, key-1 and last of `job`; one run of `lone`. Nothing twice.
    assert runs_of(db, job["id"]) == 4
    assert runs_of(db, lone["id"]) == 1


def test_stop_commits_what_is_queued_and_later_starts_go_alone(db: Database) -> None:
    rt = Runtime(Settings(database_url=db.url), db)
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)

    async def scenario() -> tuple[list[Any], Any]:
        queue = StartQueue(rt, writers=2)
        tasks = [
            asyncio.create_task(queue.start(project["id"], job["id"], request())) for _ in range(10)
        ]
        await asyncio.sleep(0)
        queue.start_threads()
        await asyncio.to_thread(queue.stop)  # the queued starts are committed first
        done = await asyncio.gather(*tasks)
        after = await queue.start(project["id"], job["id"], request())  # no threads: alone
        return done, after

    done, after = asyncio.run(scenario())
    assert [created for _, created in done] == [True] * 10
    assert after[1] is True
    assert runs_of(db, job["id"]) == 11


@pytest.mark.parametrize("writers", [1, 3])
def test_concurrent_requests_each_get_their_own_run(db: Database, writers: int) -> None:
    rt = Runtime(Settings(database_url=db.url), db)
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)

    async def scenario() -> list[Any]:
        queue = StartQueue(rt, writers=writers)
        queue.start_threads()
        try:
            return await asyncio.gather(
                *(
                    queue.start(project["id"], job["id"], request(execution_id=f"run-{i % 150}"))
                    for i in range(300)
                )
            )
        finally:
            await asyncio.to_thread(queue.stop)

    results = asyncio.run(scenario())
    created = [execution.id for execution, new in results if new]
    assert sorted(created) == sorted(f"run-{i}" for i in range(150))
    assert {execution.id for execution, _ in results} == set(created)
    assert runs_of(db, job["id"]) == 150


def test_when_the_batchs_insert_fails_each_start_is_made_alone(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from jobport.store import executions as execution_store

    rt = Runtime(Settings(database_url=db.url), db)
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)
    real = execution_store.insert_executions
    failures = []

    def fails_once(conn: Any, rows: list[dict[str, Any]]) -> None:
        if rows and not failures:
            failures.append(len(rows))
            real(conn, rows)  # written, then the batch's transaction is rolled back
            raise IntegrityError("INSERT", {}, Exception("the job was deleted meanwhile"))
        real(conn, rows)

    monkeypatch.setattr(execution_store, "insert_executions", fails_once)
    results = asyncio.run(
        queued_then_committed(
            StartQueue(rt, writers=1), [(project["id"], job["id"], request())] * 8
        )
    )
    assert failures == [8]
    assert all(created for _, created in results)
    assert runs_of(db, job["id"]) == 8  # the rolled-back batch left nothing


def test_a_hand_out_that_fails_after_the_commit_starts_nothing_twice(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobport.services import executions as execution_service

    rt = Runtime(Settings(database_url=db.url), db)
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project)

    def broken(_rt: Any, _started: Any) -> None:
        raise RuntimeError("the dispatcher is gone")

    monkeypatch.setattr(execution_service, "announce", broken)
    results = asyncio.run(
        queued_then_committed(
            StartQueue(rt, writers=1), [(project["id"], job["id"], request())] * 5
        )
    )
    assert all(created for _, created in results)
    assert runs_of(db, job["id"]) == 5  # queued once each; the sweep hands them out
