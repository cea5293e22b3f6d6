"""A worker: claims executions one at a time, runs them, beats while it does, concludes
(claiming the next one in the same transaction when one is waiting)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from jobport import metrics
from jobport.domain.clock import utcnow
from jobport.domain.executions import ErrorCode, Status
from jobport.domain.values import clean
from jobport.engine import capture, isolation, reaper
from jobport.engine.connections import ConnectionSource
from jobport.engine.lifecycle import Concluded, conclude_alone, conclude_in
from jobport.engine.logwriter import LogWriter
from jobport.engine.runner import Outcome, Run
from jobport.settings import Settings
from jobport.store import driver
from jobport.store import executions as execution_store
from jobport.store import projects as project_store
from jobport.store.db import Database

log = logging.getLogger("jobport.worker")


@dataclass(frozen=True)
class Claim:
    execution: dict[str, Any] | None
    reason: str  # claimed | gone | not_due | blocked
    not_before: dt.datetime | None = None  # when not_due: when it is
    project: str = ""  # when claimed: the project's name, for metrics


@dataclass(frozen=True)
class Ran:
    """What Worker.run() did: the run's claim and end, and the next run it was handed."""

    claim: Claim
    done: Concluded | None
    stuck: bool  # a step ignored its stop: the worker process must be replaced
    next_id: str | None = None  # taken from `following` once this run had run
    # Its claim, made in the transaction that concluded this run; None: not claimed (the
    # caller claims it as usual).
    next_claim: Claim | None = None


class _OverLimit(Exception):
    """Raised inside a claim's transaction to undo it: the job's maxConcurrent is reached."""


def claim(db: Database, execution_id: str, worker: str) -> Claim:
    """Compare-and-set queued → running, honouring not-before and the job's maxConcurrent."""
    now = utcnow()
    if db.is_postgres:  # most runs' jobs have no limit: one statement, one round trip
        with db.autocommit() as conn:
            row = execution_store.claim_unlimited(conn, execution_id, worker, now)
            got = (
                Claim(row, "claimed", project=project_store.name_of(conn, row["project_id"]))
                if row is not None
                else None
            )
        if got is not None:
            _started(got, now)
            return got
    try:
        with db.write() as conn:
            got = claim_in(conn, execution_id, worker, now)
    except _OverLimit:  # rolled back: it stays queued
        return Claim(None, "blocked")
    _started(got, now)
    return got


def claim_in(conn: Connection, execution_id: str, worker: str, now: dt.datetime) -> Claim:
    """claim() in the caller's write transaction; raises _OverLimit when the job's
    maxConcurrent is reached, and the caller rolls the claim back."""
    row = execution_store.claim_due(conn, execution_id, worker, now)
    if row is None:  # why not: gone, or not due yet
        found = execution_store.find(conn, execution_id)
        if found is None or found["status"] != Status.QUEUED:
            return Claim(None, "gone")
        return Claim(None, "not_due", found["not_before"])
    limit = row["spec"].get("maxConcurrent")
    if limit:
        # After the job's lock (PostgreSQL) the count holds every run claimed before
        # this one committed, and this one. Oldest first: the due runs queued before
        # this one take the free places before it (two workers handed a batch of a
        # job's runs at once would otherwise start whichever came first).
        execution_store.lock_job(conn, row["job_id"])
        taken = execution_store.running_count(conn, row["job_id"])
        if taken > limit or taken + execution_store.older_due_count(conn, row, now) > limit:
            raise _OverLimit
    return Claim(row, "claimed", project=project_store.name_of(conn, row["project_id"]))


def _started(got: Claim, now: dt.datetime) -> None:
    """Count a committed claim in the metrics."""
    row = got.execution
    if row is not None:
        since = max(row["created_at"], row["not_before"])
        metrics.run_started(got.project, row["job_name"], (now - since).total_seconds())


class Worker:
    """Runs executions in this process; `heartbeat` runs in a thread beside it."""

    def __init__(self, name: str, settings: Settings, db: Database) -> None:
        self.name = name
        self.settings = settings
        self.db = db
        self.connections = ConnectionSource(settings, db)
        self._current: Run | None = None
        self._current_since = 0.0
        self._beaten_version = -1
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        capture.install()

    def start_heartbeat(self) -> threading.Thread:
        thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()

    def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_interval
        while not self._stopping.wait(interval):
            with self._lock:
                run = self._current
            if run is None:
                continue
            try:
                self.beat(run)
            except Exception:  # a failed beat is retried at the next interval
                log.exception("heartbeat failed")

    def beat(self, run: Run) -> None:
        values = {}
        version = run.version
        if version != self._beaten_version:
            values["steps"] = clean(run.step_states())
            if run.iteration is not None:
                values["iteration"] = clean(run.iteration)
        with self.db.write() as conn:
            status = execution_store.heartbeat(
                conn, run.execution["id"], self.name, utcnow(), **values
            )
        self._beaten_version = version
        if status == Status.CANCELLING:
            run.request_stop(Status.CANCELLED)
        elif status is None or Status(status).is_final:
            run.request_stop(Status.CANCELLED)  # someone else ended it (e.g. declared lost)

    def run_one(self, execution_id: str) -> tuple[Claim, Concluded | None, bool]:
        """Claim and run one execution. Returns (claim, conclusion, worker must exit)."""
        ran = self.run(execution_id)
        return ran.claim, ran.done, ran.stuck

    def run(
        self,
        execution_id: str,
        *,
        claimed: Claim | None = None,
        following: Callable[[], str | None] | None = None,
    ) -> Ran:
        """Claim (unless `claimed` already is its claim) and run one execution.

        `following` gives the id of the run to take next, if one is waiting: it is asked
        once this run has run, and that run is claimed in the transaction that ends this
        one. A pool busy with short runs then writes once per run rather than twice.
        """
        got = claimed if claimed is not None else claim(self.db, execution_id, self.name)
        if got.execution is None:
            return Ran(got, None, False)
        execution = got.execution
        logs = LogWriter(
            self.db,
            execution_id,
            interval=self.settings.log_flush_interval,
            batch_lines=self.settings.log_batch_lines,
            max_bytes=self.settings.log_max_bytes,
            after=(execution["log_lines"], execution["log_bytes"]),
        )
        logs.start()
        run = Run(
            execution,
            logs,
            grace_seconds=self.settings.cancel_grace_seconds,
            connections=self.connections,
            db=self.db,
        )
        self._beaten_version = -1
        with self._lock:
            self._current = run
        try:
            outcome = run.execute()
        except Exception as exc:  # a bug of ours: never leave the execution running
            log.exception("runner failed")
            outcome = Outcome(
                Status.FAILED,
                None,
                ErrorCode.INTERNAL,
                f"internal error: {type(exc).__name__}: {exc}",
                run.step_states(),
            )
        finally:
            with self._lock:
                self._current = None
        lines, nbytes = logs.drain()
        # Not after a stuck step: this process ends, and a run claimed now would wait for
        # the heartbeat timeout to be declared lost.
        next_id = following() if following is not None and not outcome.stuck else None
        ending: dict[str, Any] = {
            "result": outcome.result,
            "error_code": outcome.error_code,
            "error_message": outcome.error_message,
            "steps": outcome.steps,
            "log_lines": lines,
            "log_bytes": nbytes,
            "iteration": run.iteration,
            "claimed": execution,
        }
        if next_id is None:  # PostgreSQL: the usual end in one round trip, else as below
            alone = conclude_alone(self.db, execution_id, outcome.status, **ending)
            if alone is not None:
                return Ran(got, alone, outcome.stuck)
        with self.db.write() as conn:
            done = conclude_in(conn, execution_id, outcome.status, **ending)
            now = utcnow()  # after this run's finishedAt: the next starts once it ended
            next_claim = self._claim_beside(conn, next_id, now) if next_id else None
        if next_claim is not None:
            _started(next_claim, now)
        return Ran(got, done, outcome.stuck, next_id, next_claim)

    def _claim_beside(self, conn: Connection, execution_id: str, now: dt.datetime) -> Claim | None:
        """claim_in() in a savepoint of another write: over the limit (or on an error of
        its own) only the claim is undone. None: not claimed, for the caller to claim."""
        nested = (
            driver.savepoint(conn, "claim_beside")  # under SQLite's write lock: lighter
            if conn.dialect.name == "sqlite"
            else conn.begin_nested()
        )
        try:
            with nested:
                return claim_in(conn, execution_id, self.name, now)
        except _OverLimit:
            return Claim(None, "blocked")
        except Exception:
            log.exception("claiming %s beside the end of the previous run failed", execution_id)
            return None


@contextlib.contextmanager
def hosted(settings: Settings) -> Iterator[Worker]:
    """Make this process a worker (a local pool's process, a `jobport worker` pool child):
    its steps' environment, its reaper, its database and a beating Worker."""
    # Read the environment steps may have while it is whole, then drop the server's
    # settings from it: this process holds them now, and Python steps run here.
    isolation.configure(settings.step_env_passthrough, settings.step_user)
    isolation.shed_settings()
    watcher = reaper.install()
    db = Database(settings.database_url)
    worker = Worker(worker_name(), settings, db)
    worker.start_heartbeat()
    try:
        yield worker
    finally:
        worker.stop()
        db.dispose()
        watcher.stop()


def worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"
