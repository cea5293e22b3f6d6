"""The dispatcher: hands queued executions to the executor, waits on them, sweeps.

It lives in the server process, on its event loop. The database is the truth: anything
the dispatcher forgets (a restart, a dead worker) is found again by the sweep.

A run whose worker is gone ends `worker_lost` (or is retried) only once every process its
command steps started on this host is gone: they are killed first, found by the marker in
their environment (processes.py), so that a retry never overlaps what is left of its
earlier attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
from collections import defaultdict
from typing import Any

from jobport.domain.clock import utcnow
from jobport.domain.executions import Status
from jobport.engine.executors import Event, Executor
from jobport.engine.lifecycle import conclude_lost
from jobport.engine.processes import kill_run_processes
from jobport.settings import Settings
from jobport.store import executions as execution_store
from jobport.store.db import Database

log = logging.getLogger("jobport.dispatcher")


def node_name() -> str:
    return os.uname().nodename


def pid_alive(worker: str) -> bool:
    """Whether the process of a worker named `node:pid` on this host still exists."""
    _, _, pid = worker.rpartition(":")
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Dispatcher:
    def __init__(self, settings: Settings, db: Database, executor: Executor) -> None:
        self.settings = settings
        self.db = db
        self.executor = executor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        # Handed to the executor (loop time): not handed out again until its event comes
        # back (local pool), or until it has waited republish_seconds (Celery).
        self._handed: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._losing: dict[str, asyncio.Task[None]] = {}  # being killed, then concluded

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await asyncio.to_thread(self.executor.start, self._from_executor)
        self.executor.attach(self._loop, self._handle)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="jobport-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for timer in self._timers.values():
            timer.cancel()
        self.executor.detach()
        killed = await asyncio.to_thread(self.executor.stop, 5.0)
        if self._losing:
            await asyncio.wait(list(self._losing.values()), timeout=30)
        # Runs cut short by the shutdown end now (or are retried), not a heartbeat later.
        for worker in killed:
            with self.db.read() as conn:
                held = execution_store.held_by(conn, worker)
            for execution_id in held:
                if await asyncio.to_thread(_kill_processes, execution_id):
                    conclude_lost(
                        self.db, execution_id, f"the server shut down while {worker} ran it"
                    )

    # -- handing out -----------------------------------------------------------------

    def _off_loop(self) -> bool:
        return self._loop is not None and threading.get_ident() != self._loop_thread

    def submit(self, execution_id: str) -> None:
        """Hand an execution to the executor. Safe to call from any thread."""
        if self._off_loop():
            self._call(self.submit, execution_id)
            return
        assert self._loop is not None
        self._handed[execution_id] = self._loop.time()
        self.executor.submit(execution_id)

    def submit_at(self, execution_id: str, when: dt.datetime) -> None:
        assert self._loop is not None
        delay = max(0.0, (when - utcnow()).total_seconds())
        old = self._timers.pop(execution_id, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(execution_id, None)
            self.submit(execution_id)

        self._timers[execution_id] = self._loop.call_later(delay + 0.01, fire)

    # -- waiting ---------------------------------------------------------------------

    async def wait(self, execution_id: str, timeout: float) -> bool:
        """Wait until the execution is final; True if it is, False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            self._waiters[execution_id].append(future)
            try:
                with self.db.read() as conn:
                    status = execution_store.status_of(conn, execution_id)
                if status is None or Status(status).is_final:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                # Woken at once by our own workers, or by another node's NOTIFY (boot._listen);
                # re-read every wait_poll_seconds in case a wake was lost.
                poll = self.settings.wait_poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(remaining, poll))
            finally:
                waiters = self._waiters.get(execution_id)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(future)
                    if not waiters:
                        del self._waiters[execution_id]

    def notify_final(self, execution_id: str) -> None:
        """Wake whoever waits for this execution. Safe to call from any thread."""
        if self._off_loop():
            # Most ends have nobody waiting (a racing waiter re-reads the database after it
            # registered, so skipping here loses no wake).
            if execution_id in self._waiters and not self._loop.is_closed():  # type: ignore[union-attr]
                self._call(self.notify_final, execution_id)
            return
        for future in self._waiters.pop(execution_id, []):
            if not future.done():
                future.set_result(None)

    # -- events from the executor (called on its thread) -----------------------------

    def _from_executor(self, event: Event) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._handle, event)

    def _handle(self, event: Event) -> None:
        kind = event[0]
        if kind == "ready":
            return
        if kind == "skipped":
            _, execution_id, reason, _job = event
            self._handed.pop(execution_id, None)
            if reason == "not_due":
                self._wake.set()
        elif kind == "finished":
            _, execution_id, _status, job_id, retry_id, retry_at, limited = event
            self._handed.pop(execution_id, None)
            self.notify_final(execution_id)
            if retry_id and retry_at:
                self.submit_at(retry_id, dt.datetime.fromisoformat(retry_at))
            if job_id and limited:
                self._release_job(job_id)
        elif kind == "lost":
            _, execution_id, reason = event
            self._handed.pop(execution_id, None)
            self._lose(execution_id, reason, True)
        elif kind == "worker_died":
            _, worker, code = event
            with self.db.read() as conn:
                held = execution_store.held_by(conn, worker)
            for execution_id in held:
                self._lose(execution_id, f"worker {worker} exited with code {code}", True)
            # Ids it had taken from the queue but not claimed would be stuck in flight.
            self._handed.clear()
            self._wake.set()

    def _lose(self, execution_id: str, reason: str, here: bool) -> None:
        """End a run whose worker is gone; if that worker ran on this host, kill first."""
        if not here:  # another node's: its processes are out of reach from here
            self._conclude_lost(execution_id, reason)
        elif execution_id not in self._losing:
            task = asyncio.get_running_loop().create_task(
                self._kill_then_conclude(execution_id, reason)
            )
            self._losing[execution_id] = task

    async def _kill_then_conclude(self, execution_id: str, reason: str) -> None:
        try:
            # /proc is scanned off the loop: it takes a few milliseconds per round.
            if await asyncio.to_thread(_kill_processes, execution_id):
                self._conclude_lost(execution_id, reason)
        finally:
            self._losing.pop(execution_id, None)

    def _conclude_lost(self, execution_id: str, reason: str) -> None:
        done = conclude_lost(self.db, execution_id, reason)
        self.notify_final(execution_id)
        if done.retry_id and done.retry_at:
            self.submit_at(done.retry_id, done.retry_at)
        if done.job_id and done.limited:
            self._release_job(done.job_id)

    def _release_job(self, job_id: str) -> None:
        """A run of this job ended: queued runs held back by maxConcurrent may go now."""
        with self.db.read() as conn:
            waiting = execution_store.queued_for_job(conn, job_id, utcnow(), limit=10)
        # In flight or not: a worker may have found it blocked just before this run ended,
        # and its "skipped" report may still be on the way. A second hand-out costs one
        # failed claim at most.
        for execution_id in waiting:
            self.submit(execution_id)

    # -- the sweep -------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.sweep_once)
            except Exception:
                log.exception("sweep failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.sweep_interval)

    def sweep_once(self) -> None:
        """Fail executions whose worker stopped beating; hand out queued ones nobody holds."""
        now = utcnow()
        stale_before = now - dt.timedelta(seconds=self.settings.heartbeat_timeout)
        with self.db.read() as conn:
            stale = execution_store.stale_running(conn, stale_before)
            due = execution_store.due_queued(conn, now)
            local = execution_store.running_on_node(conn, node_name())
        lost: dict[str, str] = {
            execution_id: f"no heartbeat for more than {self.settings.heartbeat_timeout:g}s "
            "(its worker or server died)"
            for execution_id in stale
        }
        for worker, execution_id in local:
            if execution_id not in lost and not pid_alive(worker):
                lost[execution_id] = f"its worker process {worker} no longer exists"
        here = {execution_id for _, execution_id in local}
        for execution_id, reason in lost.items():
            self._call(self._lose, execution_id, reason, execution_id in here)
        waited = {row["id"]: (now - row["not_before"]).total_seconds() for row in due}
        self._call(self._resubmit, waited)

    def _resubmit(self, waited: dict[str, float]) -> None:
        """Hand out again the due queued runs (id: seconds since due) that need it."""
        assert self._loop is not None
        now, again = self._loop.time(), self.settings.republish_seconds
        for execution_id, seconds in waited.items():
            if execution_id in self._timers:
                continue
            handed = self._handed.get(execution_id)
            if self.executor.reports_back:
                wanted = handed is None
            elif handed is None:  # another node handed it out, or a restart forgot it
                wanted = seconds >= again
            else:
                wanted = now - handed >= again
            if wanted:
                self.submit(execution_id)
        if not self.executor.reports_back:  # forget what was claimed meanwhile
            self._handed = {k: t for k, t in self._handed.items() if k in waited or now - t < again}

    def _call(self, fn: Any, *args: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)


def _kill_processes(execution_id: str) -> bool:
    """Kill what the run's command steps left on this host; True once none is left."""
    try:
        left = kill_run_processes(execution_id)
    except Exception:  # a bug here must not keep runs from ending
        log.exception("could not look for the processes of %s", execution_id)
        return True
    if left:
        # Not concluded: the next sweep tries again, and no retry starts beside them.
        log.warning(
            "execution %s: processes %s survived SIGKILL; it stays running until they are gone",
            execution_id,
            left,
        )
    return not left


class PublishOnly:
    """The dispatcher of a process that only queues runs (`jobport scheduler` beside Celery
    workers): it hands new runs to the executor at once; nobody waits here (waiters are on
    the API nodes, woken through the database), and the API nodes sweep."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def start(self) -> None:
        self.executor.start(lambda _event: None)

    def stop(self) -> None:
        self.executor.stop(5.0)

    def submit(self, execution_id: str) -> None:
        self.executor.submit(execution_id)

    def notify_final(self, execution_id: str) -> None:
        pass
