"""Retention: pruning ended runs and their logs by the server's and each job's policy, in
small transactions, and the background pruner of `jobport serve`."""

# A pass plans in one read (which jobs have something to prune, and the cutoffs), then
# removes it a transaction at a time: each deletes at most `batch` rows (runs, log lines,
# items together), so on SQLite the one write lock is held for milliseconds, and between
# two transactions the pruner waits as long as the last one took, so writers always get in.
# Everything is idempotent: two pruners (two API nodes) only find less to do.

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import Connection

from jobport import metrics
from jobport.domain.clock import utcnow
from jobport.domain.retention import Policy, Retention, later, policy
from jobport.settings import Settings
from jobport.store import retention as store
from jobport.store.db import Database
from jobport.store.tables import execution_items, execution_logs

log = logging.getLogger("jobport.retention")

PASS_SECONDS = 30.0  # a pass stops after this; the next one follows a second later
_AGAIN_SECONDS = 1.0


@dataclass
class Pruned:
    """What a pass removed (or, dry, would remove)."""

    runs: int = 0  # runs removed, with their log lines and items
    log_lines: int = 0  # log lines removed, with their runs or alone
    items: int = 0  # foreach items removed with their runs
    logs: int = 0  # runs that stay, whose log was removed
    transactions: int = 0
    longest_seconds: float = 0.0  # the longest write transaction
    complete: bool = True  # False: the pass ran out of time (or was stopped) first

    def __bool__(self) -> bool:
        return bool(self.runs or self.log_lines or self.items or self.logs)

    def describe(self) -> str:
        return (
            f"{self.runs} runs, {self.log_lines} log lines, {self.items} items, "
            f"and the logs of {self.logs} runs"
        )


@dataclass(frozen=True)
class _Work:
    job_id: str
    run_cutoff: dt.datetime | None  # runs that ended before go
    log_cutoff: dt.datetime | None  # logs of runs that ended before (and from run_cutoff) go


def server_policy(settings: Settings) -> Policy:
    return Policy(
        days=settings.retention_days,
        runs=settings.retention_runs_per_job,
        log_days=settings.log_retention_days,
    )


def _job_retention(raw: object) -> Retention | None:
    if not raw:
        return None
    try:
        return Retention.model_validate(raw)
    except ValidationError:  # written before a check existed: the server's policy holds
        return None


def plan(conn: Connection, settings: Settings, now: dt.datetime) -> list[_Work]:
    """The jobs that have runs or logs to prune now, with their cutoffs."""
    server = server_policy(settings)
    work = []
    for job_id, raw in store.job_policies(conn):
        p = policy(server, _job_retention(raw))
        run_cutoff = p.run_cutoff(now)
        if p.runs:
            run_cutoff = later(run_cutoff, store.nth_newest_end(conn, job_id, p.runs))
        log_cutoff = p.log_cutoff(now)
        if log_cutoff is not None and run_cutoff is not None and log_cutoff <= run_cutoff:
            log_cutoff = None
        if run_cutoff is not None and not store.ended_before(conn, job_id, run_cutoff, 1):
            run_cutoff = None
        if log_cutoff is not None and not store.ended_before(
            conn, job_id, log_cutoff, 1, logs_only=True
        ):
            log_cutoff = None
        if run_cutoff is not None or log_cutoff is not None:
            work.append(_Work(job_id, run_cutoff, log_cutoff))
    return work


def count(db: Database, settings: Settings, now: dt.datetime | None = None) -> Pruned:
    """What a pass would remove now (`jobport db prune --dry-run`); removes nothing."""
    now = now or utcnow()
    total = Pruned()
    with db.read() as conn:
        for work in plan(conn, settings, now):
            if work.run_cutoff is not None:
                runs, lines, items = store.count_ended_before(conn, work.job_id, work.run_cutoff)
                total.runs += runs
                total.log_lines += lines
                total.items += items
            if work.log_cutoff is not None:
                runs, lines, _ = store.count_ended_before(
                    conn,
                    work.job_id,
                    work.log_cutoff,
                    not_before=work.run_cutoff,
                    logs_only=True,
                )
                total.logs += runs
                total.log_lines += lines
    return total


def prune(
    db: Database,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    batch: int | None = None,
    seconds: float = PASS_SECONDS,
    stopping: Callable[[], bool] = lambda: False,
) -> Pruned:
    """One pass: remove what the policies say may go, `batch` rows per transaction, until
    nothing is left, `seconds` have passed or `stopping()` says so."""
    now = now or utcnow()
    rows = batch or settings.prune_batch
    deadline = time.monotonic() + seconds
    total = Pruned()
    with db.read() as conn:
        todo = plan(conn, settings, now)
    for work in todo:
        for cutoff, step in ((work.run_cutoff, _runs_batch), (work.log_cutoff, _logs_batch)):
            while cutoff is not None:
                if stopping() or time.monotonic() >= deadline:
                    total.complete = False
                    return total
                began = time.monotonic()
                with db.write() as conn:
                    found = step(conn, work.job_id, cutoff, rows, now, total)
                took = time.monotonic() - began
                total.transactions += 1
                total.longest_seconds = max(total.longest_seconds, took)
                if not found:
                    break
                time.sleep(took)  # writers waiting for the lock get it first
    return total


def _delete_children(
    conn: Connection, execution_id: str, tables: tuple, left: int, total: Pruned
) -> tuple[bool, int]:
    """Delete the run's rows of `tables` within `left`; (all gone, rows deleted)."""
    deleted = 0
    for table in tables:
        if left - deleted <= 0:
            return False, deleted
        want = left - deleted
        n = store.delete_children(conn, table, execution_id, want)
        deleted += n
        if table is execution_logs:
            total.log_lines += n
        else:
            total.items += n
        if n == want:  # perhaps more: the next transaction looks again
            return False, deleted
    return True, deleted


def _runs_batch(
    conn: Connection, job_id: str, cutoff: dt.datetime, rows: int, now: dt.datetime, total: Pruned
) -> bool:
    ids = store.ended_before(conn, job_id, cutoff, rows)
    left, gone = rows, []
    for execution_id in ids:
        done, n = _delete_children(
            conn, execution_id, (execution_logs, execution_items), left, total
        )
        left -= n
        if not done:
            break
        gone.append(execution_id)
        left -= 1
        if left <= 0:
            break
    total.runs += store.delete_runs(conn, gone)
    return bool(ids)


def _logs_batch(
    conn: Connection, job_id: str, cutoff: dt.datetime, rows: int, now: dt.datetime, total: Pruned
) -> bool:
    ids = store.ended_before(conn, job_id, cutoff, rows, logs_only=True)
    left, emptied = rows, []
    for execution_id in ids:
        done, n = _delete_children(conn, execution_id, (execution_logs,), left, total)
        left -= n
        if not done:
            break
        emptied.append(execution_id)
        left -= 1
        if left <= 0:
            break
    total.logs += store.mark_logs_pruned(conn, emptied, now)
    return bool(ids)


def record(pruned: Pruned) -> None:
    """Count a pass in the metrics and say it in the log (when it removed anything)."""
    if not pruned:
        return
    metrics.pruned(runs=pruned.runs, log_lines=pruned.log_lines, items=pruned.items)
    log.info(
        "retention pruned %s in %d transactions (longest %.1f ms)%s",
        pruned.describe(),
        pruned.transactions,
        pruned.longest_seconds * 1000,
        "" if pruned.complete else "; more to do",
    )


@dataclass
class Pruner:
    """Prunes every JOBPORT_PRUNE_INTERVAL_SECONDS on a daemon thread (inside `serve`);
    a pass that ran out of time is followed by the next a second later."""

    db: Database
    settings: Settings
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jobport-pruner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        wait = self.settings.prune_interval_seconds
        while not self._stop.wait(wait):
            wait = self.settings.prune_interval_seconds
            try:
                pruned = prune(self.db, self.settings, stopping=self._stop.is_set)
            except Exception:  # the database away, say: the next pass tries again
                log.exception("retention: a pruning pass failed")
                continue
            record(pruned)
            if not pruned.complete:
                wait = min(wait, _AGAIN_SECONDS)
