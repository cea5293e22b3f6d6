"""Retention: pruning ended runs and their logs by the server's and each job's policy, in
small transactions, and the background pruner of `jobport serve`."""

# A pass plans in one read (which jobs have something to prune, and the cutoffs), then
# removes it a transaction at a time: each deletes at most `batch` rows (runs, log lines,
# items together; log lines as the runs' counters say), so on SQLite the one write lock is
# held for milliseconds, and between two the pruner pauses (PAUSE_FACTOR) for the writers.
# Everything is idempotent: two pruners (two API nodes) only find less to do.

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
# After each transaction the pruner waits twice as long as it took (at least 5 ms): it holds
# SQLite's write lock a third of the time at most, and writers whose busy wait sleeps in
# steps of several milliseconds still find it free (measured: README "Retention").
PAUSE_FACTOR = 2.0
MIN_PAUSE_SECONDS = 0.005


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
                time.sleep(max(took * PAUSE_FACTOR, MIN_PAUSE_SECONDS))
    return total


def _take(found: list[tuple[str, int]], rows: int) -> list[str]:
    """The oldest runs whose log lines (by their counters) and rows fit in `rows`."""
    taken, left = [], rows
    for execution_id, lines in found:
        if lines + 1 > left:
            break
        taken.append(execution_id)
        left -= lines + 1
    return taken


def _piece(
    conn: Connection, execution_id: str, tables: tuple[Any, ...], rows: int, total: Pruned
) -> bool:
    """Delete up to `rows` rows of one run's `tables` (a log too long for one batch, or many
    items); True once none are left."""
    left = rows
    for table in tables:
        if left <= 0:
            return False
        n = store.delete_children(conn, table, execution_id, left)
        if table is execution_logs:
            total.log_lines += n
        else:
            total.items += n
        if n == left:  # perhaps more: the next transaction looks again
            return False
        left -= n
    return True


def _runs_batch(
    conn: Connection, job_id: str, cutoff: dt.datetime, rows: int, now: dt.datetime, total: Pruned
) -> bool:
    found = store.ended_before(conn, job_id, cutoff, rows)
    taken = _take(found, rows)
    if found and not taken:  # the oldest run's log alone is more than a batch: a piece
        execution_id = found[0][0]
        if _piece(conn, execution_id, (execution_logs, execution_items), rows, total):
            total.runs += store.delete_runs(conn, [execution_id])
        return True
    lines = store.delete_logs(conn, taken)
    total.log_lines += lines
    left, gone = rows - lines - len(taken), []
    foreach = store.with_items(conn, taken)  # items are rare (foreach runs), uncounted
    for execution_id in taken:
        if execution_id in foreach:
            before = total.items
            if not _piece(conn, execution_id, (execution_items,), max(left, 1), total):
                break  # its items go on in the next transaction, and the runs after it
            left -= total.items - before
        gone.append(execution_id)
    total.runs += store.delete_runs(conn, gone)
    return bool(found)


def _logs_batch(
    conn: Connection, job_id: str, cutoff: dt.datetime, rows: int, now: dt.datetime, total: Pruned
) -> bool:
    found = store.ended_before(conn, job_id, cutoff, rows, logs_only=True)
    taken = _take(found, rows)
    if found and not taken:  # a log longer than a batch: a piece of it
        execution_id = found[0][0]
        if _piece(conn, execution_id, (execution_logs,), rows, total):
            total.logs += store.mark_logs_pruned(conn, [execution_id], now)
        return True
    total.log_lines += store.delete_logs(conn, taken)
    total.logs += store.mark_logs_pruned(conn, taken, now)
    return bool(found)


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
