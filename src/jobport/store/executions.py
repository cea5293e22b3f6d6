"""Executions repository: every status change is a compare-and-set on the current status."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    String,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobport.domain.executions import ACTIVE, Status
from jobport.domain.ids import object_id, object_ref
from jobport.domain.pages import Page
from jobport.errors import NotFound
from jobport.store import logs as log_store
from jobport.store import notify
from jobport.store.driver import DriverStatement
from jobport.store.pagination import fetch_rows, page_of
from jobport.store.tables import execution_logs, executions, jobs

_ACTIVE = [s.value for s in ACTIVE]
_RUNNING = [Status.RUNNING.value, Status.CANCELLING.value]


def _status_in(*statuses: str) -> ColumnElement[bool]:
    """The status filter of a statement that finds its rows by primary key (a claim, an
    end, a compare-and-set), written so that no index on status can serve it.

    PostgreSQL's statistics usually say that no run is queued or running (most are ended),
    so for `id = :id AND status = 'queued' AND not_before <= :now` its planner estimates
    ix_executions_status_not_before and the primary key at one row each, and may take the
    smaller: then every claim reads the index entries of every queued run, the dead ones
    included, and a backlog of N runs costs N per claim (seen in phase b: 866 index entries
    read per claim). `status || ''` is not the indexed column, so the primary key it is.
    """
    unindexed = executions.c.status.concat("")
    return unindexed == statuses[0] if len(statuses) == 1 else unindexed.in_(statuses)


class DuplicateExecution(Exception):
    """The id or idempotency key is taken; the caller reads the existing execution."""


def insert_execution(conn: Connection, row: dict[str, Any]) -> None:
    """Insert a new execution; DuplicateExecution if its id, object id or idempotency key is
    taken. One statement (no savepoint): the clash is skipped by the database, not raised."""
    row.setdefault("object_id", object_id(row["id"]))
    try:
        inserted = conn.execute(_insert_if_new(conn.dialect.name), row).first()
    except IntegrityError as exc:  # the foreign key: its job was deleted meanwhile
        raise NotFound("the job was deleted meanwhile", code="job_not_found") from exc
    if inserted is None:
        raise DuplicateExecution(row["id"])


@functools.cache
def _insert_if_new(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, built once per dialect (its values are
    parameters); no row back: a clash."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(executions).on_conflict_do_nothing().returning(executions.c.id)


def insert_executions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert new executions (fresh ids) in one executemany, as the scheduler and the
    starts' group commit do per batch: on the driver's cursor when the rows have the same
    columns (the usual case: each is a queued_execution()), which spares SQLAlchemy's
    parameter handling per row (a tenth of the server's CPU per accepted start)."""
    if not rows:
        return
    for row in rows:
        row.setdefault("object_id", object_id(row["id"]))
    first = rows[0].keys()
    statement = _inserting(tuple(sorted(first)))
    if all(row.keys() == first for row in rows) and statement.compiles(conn.dialect):
        statement.executemany(conn, rows)
    else:  # a column left to its default, say
        conn.execute(insert(executions), rows)


@functools.lru_cache(maxsize=16)
def _inserting(columns: tuple[str, ...]) -> DriverStatement:
    """The INSERT of these columns, each a parameter of the column's own type."""
    statement = insert(executions).values({c: bindparam(c) for c in columns})
    return DriverStatement(statement, columns)


def find(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(executions).where(executions.c.id == execution_id)).first()
    return dict(row._mapping) if row else None


def find_by_object_id(conn: Connection, oid: str) -> dict[str, Any] | None:
    """An execution by the 24-hex object id vendor faces show (domain/ids.object_id)."""
    query = select(executions).where(executions.c.object_id == object_ref(oid))
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def get(conn: Connection, execution_id: str) -> dict[str, Any]:
    row = find(conn, execution_id)
    if row is None:
        raise NotFound(f"no execution {execution_id!r}", code="execution_not_found")
    return row


def find_by_idempotency_key(conn: Connection, project_id: str, key: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(executions).where(
            executions.c.project_id == project_id, executions.c.idempotency_key == key
        )
    ).first()
    return dict(row._mapping) if row else None


def active_for_job(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(executions)
        .where(executions.c.job_id == job_id, executions.c.status.in_(_ACTIVE))
        .order_by(executions.c.created_at, executions.c.id)
    )
    return [dict(r._mapping) for r in rows]


def active_for_schedules(
    conn: Connection, schedule_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The queued or running executions each of these schedules started, oldest first."""
    ids = list(schedule_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(
            executions.c.id,
            executions.c.status,
            executions.c.schedule_id,
            executions.c.project_id,
            executions.c.job_name,
        )
        .where(executions.c.schedule_id.in_(ids), executions.c.status.in_(_ACTIVE))
        .order_by(executions.c.created_at, executions.c.id)
    )
    active: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        active.setdefault(r.schedule_id, []).append(dict(r._mapping))
    return active


def latest_for_jobs(conn: Connection, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The newest execution of each job, by creation time (ids may be caller-given)."""
    ids = list(job_ids)
    if not ids:
        return {}
    newer = executions.alias("newer")
    newest_time = (
        select(func.max(newer.c.created_at))
        .where(newer.c.job_id == executions.c.job_id)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(executions).where(
            executions.c.job_id.in_(ids), executions.c.created_at == newest_time
        )
    )
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:  # equal creation times: the greatest id wins, deterministically
        if r.job_id not in latest or r.id > latest[r.job_id]["id"]:
            latest[r.job_id] = dict(r._mapping)
    return latest


def list_page(
    conn: Connection,
    project_id: str,
    *,
    job_id: str | None,
    statuses: list[str],
    created_after: dt.datetime | None,
    created_before: dt.datetime | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = select(executions).where(executions.c.project_id == project_id)
    if job_id:
        query = query.where(executions.c.job_id == job_id)
    if created_after:
        query = query.where(executions.c.created_at >= created_after)
    if created_before:
        query = query.where(executions.c.created_at < created_before)
    page = functools.partial(
        fetch_rows,
        conn,
        sort_col=executions.c.created_at,
        id_col=executions.c.id,
        descending=True,
        cursor=cursor,
        limit=limit,
    )
    # One query per status, each walking (project, status, created_at) in order, merged: a
    # single `status IN (...)` query is planned on (project, created_at) instead and reads
    # every run of the project when the statuses are rare (a listing of what is active).
    rows = [
        row
        for status in dict.fromkeys(statuses or [None])
        for row in page(query if status is None else query.where(executions.c.status == status))
    ]
    rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return page_of(rows, limit, "created_at", "id")


def transition(
    conn: Connection,
    execution_id: str,
    target: Status,
    expected: Iterable[Status],
    **values: Any,
) -> bool:
    """Compare-and-set: move to `target` only if the status is one of `expected`."""
    result = conn.execute(
        update(executions)
        .where(
            executions.c.id == execution_id,
            _status_in(*(s.value for s in expected)),
        )
        .values(status=target.value, **values)
    )
    if result.rowcount != 1:
        return False
    if target.is_final:  # other nodes wake whoever waits for it (store/notify.py)
        notify.publish(conn, "final", execution_id)
    return True


_CLAIM = (
    update(executions)
    .where(
        executions.c.id == bindparam("claim_id"),
        _status_in(Status.QUEUED.value),
        executions.c.not_before <= bindparam("claim_now", type_=executions.c.not_before.type),
    )
    .values(
        status=Status.RUNNING.value,
        worker=bindparam("claim_worker"),
        started_at=bindparam("claim_now", type_=executions.c.started_at.type),
        heartbeat_at=bindparam("claim_now", type_=executions.c.heartbeat_at.type),
    )
    .returning(*executions.c)
)
_CLAIM_PARAMS = ("claim_id", "claim_worker", "claim_now")
_CLAIM_DRIVER = DriverStatement(_CLAIM, _CLAIM_PARAMS)
# The same, only for a run whose job has no maxConcurrent: then the statement alone
# decides the claim, and it needs no transaction of its own.
_CLAIM_UNLIMITED = DriverStatement(
    _CLAIM.where(executions.c.spec["maxConcurrent"].as_string().is_(None)), _CLAIM_PARAMS
)


def claim_due(
    conn: Connection, execution_id: str, worker: str, now: dt.datetime
) -> dict[str, Any] | None:
    """Compare-and-set queued → running of a run that is due, in one prebuilt statement
    (on the driver's cursor: store/driver.py): the row as it is now, or None (not queued
    any more, or not due yet)."""
    return _CLAIM_DRIVER.first(
        conn, {"claim_id": execution_id, "claim_worker": worker, "claim_now": now}
    )


def claim_unlimited(
    conn: Connection, execution_id: str, worker: str, now: dt.datetime
) -> dict[str, Any] | None:
    """claim_due() of a run whose job has no maxConcurrent, in one statement that may run
    in autocommit (PostgreSQL: one round trip, no BEGIN and COMMIT): the row, or None when
    it did not apply (gone, not due, limited: claim_due() in a transaction says which)."""
    return _CLAIM_UNLIMITED.first(
        conn, {"claim_id": execution_id, "claim_worker": worker, "claim_now": now}
    )


_FINISH = (
    update(executions)
    .where(
        executions.c.id == bindparam("finish_id"),
        _status_in(Status.RUNNING.value),
    )
    .values(
        status=bindparam("finish_status"),
        finished_at=bindparam("finish_at", type_=executions.c.finished_at.type),
        result=bindparam("finish_result", type_=executions.c.result.type),
        error_code=bindparam("finish_error_code"),
        error_message=bindparam("finish_error_message"),
        steps=bindparam("finish_steps", type_=executions.c.steps.type),
        log_lines=executions.c.log_lines + bindparam("finish_lines"),
        log_bytes=executions.c.log_bytes + bindparam("finish_bytes"),
    )
)
_FINISHED = {"finished_at", "result", "error_code", "error_message", "steps"}
_FINISH_PARAMS = (
    "finish_id",
    "finish_status",
    "finish_at",
    "finish_result",
    "finish_error_code",
    "finish_error_message",
    "finish_steps",
    "finish_lines",
    "finish_bytes",
)
_FINISH_DRIVER = DriverStatement(_FINISH, _FINISH_PARAMS)
# On PostgreSQL the same UPDATE sends the `final` notice (store/notify.py) from its
# RETURNING, sparing a round trip per run; like any NOTIFY, it is delivered on commit.
_FINISH_NOTIFYING = DriverStatement(
    _FINISH.returning(func.pg_notify(notify.CHANNEL, "final:" + executions.c.id)),
    _FINISH_PARAMS,
)


def finish_running(
    conn: Connection,
    execution_id: str,
    target: Status,
    *,
    log_counts: tuple[int, int],
    **values: Any,
) -> tuple[int, int] | None:
    """transition(running → target) with the values a worker ends a run with, in one
    prebuilt statement (the hot path of every run's end); other values: transition().

    `log_counts` (lines, bytes) are the last log lines': the prebuilt statement adds them
    to the run's counters too, sparing log_store.append its UPDATE. Returns what it added
    (`log_counts` or (0, 0)), None when the run was not running.
    """
    if values.keys() != _FINISHED:
        if not transition(conn, execution_id, target, [Status.RUNNING], **values):
            return None
        return (0, 0)
    params = {f"finish_{k}": v for k, v in values.items()}
    params["finish_at"] = params.pop("finish_finished_at")
    params["finish_lines"], params["finish_bytes"] = log_counts
    params.update(finish_id=execution_id, finish_status=target.value)
    if conn.dialect.name == "postgresql":
        if _FINISH_NOTIFYING.rowcount(conn, params) != 1:
            return None
        return log_counts
    if _FINISH_DRIVER.rowcount(conn, params) != 1:
        return None
    notify.publish(conn, "final", execution_id)  # nothing to send on SQLite, today
    return log_counts


def finish_with_lines(
    conn: Connection,
    execution_id: str,
    target: Status,
    values: dict[str, Any],
    lines: list[dict[str, Any]],
    nbytes: int,
) -> bool:
    """PostgreSQL: finish_running() and the last lines' INSERT in one statement (a
    data-modifying CTE), which may run in autocommit: one round trip for a run's end
    instead of BEGIN, UPDATE, INSERT, COMMIT. The lines are inserted only if the run was
    still running; False (and nothing changed) if it was not."""
    if values.keys() != _FINISHED:
        raise ValueError(f"finish_with_lines takes exactly {sorted(_FINISHED)}")
    if len(lines) > log_store.ROWS_PER_INSERT:  # each line is 7 parameters of one statement
        raise ValueError(f"finish_with_lines takes at most {log_store.ROWS_PER_INSERT} lines")
    params = {
        "id": execution_id,
        "status": target.value,
        "nlines": len(lines),
        "nbytes": nbytes,
        **values,
    }
    for i, ln in enumerate(lines):
        params.update(
            {
                f"seq_{i}": ln["seq"],
                f"at_{i}": ln["at"],
                f"step_{i}": ln["step"],
                f"stream_{i}": ln["stream"],
                f"level_{i}": ln["level"],
                f"text_{i}": ln["text"],
                f"iteration_{i}": ln.get("iteration"),
            }
        )
    return bool(_finishing_with(len(lines)).scalar(conn, params))


@functools.lru_cache(maxsize=32)  # a run's last batch is usually a few lines
def _finishing_with(count: int) -> DriverStatement:
    """finish_with_lines()'s statement for `count` lines, built and compiled once."""
    binds = [
        bindparam("id", type_=String),
        bindparam("status", type_=String),
        bindparam("finished_at", type_=executions.c.finished_at.type),
        bindparam("result", type_=executions.c.result.type),
        bindparam("error_code", type_=String),
        bindparam("error_message", type_=String),
        bindparam("steps", type_=executions.c.steps.type),
        bindparam("nlines", type_=Integer),
        bindparam("nbytes", type_=Integer),
    ]
    rows = []
    for i in range(count):
        rows.append(
            f"(CAST(:seq_{i} AS INTEGER), CAST(:at_{i} AS TIMESTAMP), :step_{i}, "
            f":stream_{i}, :level_{i}, :text_{i}, CAST(:iteration_{i} AS INTEGER))"
        )
        binds += [
            bindparam(f"seq_{i}", type_=Integer),
            bindparam(f"at_{i}", type_=execution_logs.c.at.type),
            bindparam(f"step_{i}", type_=String),
            bindparam(f"stream_{i}", type_=String),
            bindparam(f"level_{i}", type_=String),
            bindparam(f"text_{i}", type_=String),
            bindparam(f"iteration_{i}", type_=Integer),
        ]
    logged = (
        ", logged AS (INSERT INTO execution_logs"
        " (execution_id, seq, at, step, stream, level, text, iteration)"
        " SELECT fin.id, v.seq, v.at, v.step, v.stream, v.level, v.text, v.iteration"
        f" FROM fin CROSS JOIN (VALUES {', '.join(rows)})"
        " AS v (seq, at, step, stream, level, text, iteration))"
        if rows
        else ""
    )
    statement = text(
        "WITH fin AS (UPDATE executions SET status = :status, finished_at = :finished_at,"
        " result = :result, error_code = :error_code, error_message = :error_message,"
        " steps = :steps, log_lines = log_lines + :nlines, log_bytes = log_bytes + :nbytes"
        f" WHERE id = :id AND (status || '') = '{Status.RUNNING.value}'"  # _status_in()
        f" RETURNING id, pg_notify('{notify.CHANNEL}', 'final:' || id))"
        f"{logged} SELECT count(*) FROM fin"
    ).bindparams(*binds)
    return DriverStatement(statement, tuple(b.key for b in binds))


def older_due_count(conn: Connection, row: dict[str, Any], now: dt.datetime) -> int:
    """How many queued runs of the row's job, due by `now`, were created before it."""
    older = (executions.c.created_at < row["created_at"]) | (
        (executions.c.created_at == row["created_at"]) & (executions.c.id < row["id"])
    )
    return conn.execute(
        select(func.count())
        .select_from(executions)
        .where(
            executions.c.job_id == row["job_id"],
            executions.c.status == Status.QUEUED.value,
            executions.c.not_before <= now,
            older,
        )
    ).scalar_one()


def running_count(conn: Connection, job_id: str) -> int:
    return conn.execute(
        select(func.count())
        .select_from(executions)
        .where(executions.c.job_id == job_id, executions.c.status.in_(_RUNNING))
    ).scalar_one()


def lock_job(conn: Connection, job_id: str) -> None:
    """Serialise per-job decisions (concurrency limits) across nodes on PostgreSQL.

    SQLite needs nothing: every write transaction there is BEGIN IMMEDIATE.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())


def heartbeat(
    conn: Connection, execution_id: str, worker: str, now: dt.datetime, **values: Any
) -> str | None:
    """Record that `worker` still runs the execution; returns the current status.

    Only while it runs: a beat that lost the race with the run's end must not write its
    step states over the final ones."""
    conn.execute(
        update(executions)
        .where(
            executions.c.id == execution_id,
            executions.c.worker == worker,
            _status_in(*_RUNNING),
        )
        .values(heartbeat_at=now, **values)
    )
    return conn.execute(
        select(executions.c.status).where(executions.c.id == execution_id)
    ).scalar_one_or_none()


def status_of(conn: Connection, execution_id: str) -> str | None:
    return conn.execute(
        select(executions.c.status).where(executions.c.id == execution_id)
    ).scalar_one_or_none()


def stale_running(conn: Connection, older_than: dt.datetime, limit: int = 500) -> list[str]:
    """Running executions whose worker stopped beating before `older_than`."""
    rows = conn.execute(
        select(executions.c.id)
        .where(
            executions.c.status.in_(_RUNNING),
            func.coalesce(executions.c.heartbeat_at, executions.c.started_at) < older_than,
        )
        .limit(limit)
    )
    return [r.id for r in rows]


def due_queued(conn: Connection, now: dt.datetime, limit: int = 1000) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(executions.c.id, executions.c.job_id, executions.c.not_before)
        .where(executions.c.status == Status.QUEUED.value, executions.c.not_before <= now)
        .order_by(executions.c.created_at, executions.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def queues_of_queued(conn: Connection, execution_ids: list[str]) -> dict[str, str]:
    """The job queue of each of these executions that is still queued (the others are
    left out: nothing to hand out)."""
    # The queue alone, read in the database (->> on PostgreSQL, json_extract on SQLite):
    # the publisher asks this for every batch, and a whole spec is the largest column.
    rows = conn.execute(
        select(executions.c.id, executions.c.spec["queue"].as_string().label("queue")).where(
            executions.c.id.in_(execution_ids), _status_in(Status.QUEUED.value)
        )
    )
    return {r.id: r.queue or "default" for r in rows}


def queued_for_job(conn: Connection, job_id: str, now: dt.datetime, limit: int) -> list[str]:
    rows = conn.execute(
        select(executions.c.id)
        .where(
            executions.c.job_id == job_id,
            executions.c.status == Status.QUEUED.value,
            executions.c.not_before <= now,
        )
        .order_by(executions.c.created_at, executions.c.id)
        .limit(limit)
    )
    return [r.id for r in rows]


def held_by(conn: Connection, worker: str) -> list[str]:
    rows = conn.execute(
        select(executions.c.id).where(
            executions.c.worker == worker, executions.c.status.in_(_RUNNING)
        )
    )
    return [r.id for r in rows]


def first_active_in_project(conn: Connection, project_id: str) -> str | None:
    return conn.execute(
        select(executions.c.id)
        .where(executions.c.project_id == project_id, executions.c.status.in_(_ACTIVE))
        .limit(1)
    ).scalar_one_or_none()


def running_on_node(conn: Connection, node: str) -> list[tuple[str, str]]:
    """(worker, execution id) of running executions held by workers named `node:*`."""
    rows = conn.execute(
        select(executions.c.worker, executions.c.id).where(
            executions.c.status.in_(_RUNNING), executions.c.worker.like(f"{node}:%")
        )
    )
    return [(r.worker, r.id) for r in rows]
