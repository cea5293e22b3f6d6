"""The local executor: a pool of worker processes on this host, fed through a queue."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from jobport.engine import isolation
from jobport.engine.executors import EventSink
from jobport.engine.steps import STEP_MODULES
from jobport.settings import Settings

log = logging.getLogger("jobport.executor")
# Workers are forked from a fork server: a fresh, single-threaded process that imports the
# worker's modules once, so a worker starts in milliseconds (at server start and when one is
# replaced) instead of importing everything again; nothing of the server process (its
# threads, its open database connections) is copied into them. The first module ties the
# fork server's life to the server's (see there).
_ctx = mp.get_context("forkserver")
_ctx.set_forkserver_preload(
    [
        "jobport.engine.executors.forkserver_preload",
        "jobport.engine.worker",
        "jobport.store.db",
        *STEP_MODULES,  # else each worker imports them on its first run
    ]
)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def worker_process(index: int, settings_data: dict[str, Any], tasks: Any, events: Any) -> None:
    """Entry point of a worker process."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when workers stop
    from jobport.engine.worker import hosted

    with hosted(Settings(**settings_data)) as worker:
        _serve(worker, tasks, events)


class _Following:
    """Worker.run's `following`: the next id waiting in the queue, if any, without waiting
    for one. It keeps what it took, so that no id is dropped whatever the run did."""

    def __init__(self, tasks: Any) -> None:
        self.tasks = tasks
        self.taken: list[str] = []
        self.stopping = False  # it took the stop meant for this process: stop after the run

    def __call__(self) -> str | None:
        if self.stopping:
            return None
        try:
            next_id = self.tasks.get_nowait()
        except queue.Empty:
            return None
        if next_id is None:
            self.stopping = True
            return None
        self.taken.append(next_id)
        return next_id


def _serve(worker: Any, tasks: Any, events: Any) -> None:
    events.put(("ready", worker.name))
    parent = os.getppid()
    following = _Following(tasks)
    ahead: list[tuple[str, Any]] = []  # the next run to take: (id, its claim or None)
    while True:
        if ahead:
            execution_id, claimed = ahead.pop()
        elif following.stopping:
            return
        else:
            try:
                execution_id = tasks.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if execution_id is None:
                return
            claimed = None
        ran = None
        try:
            ran = worker.run(execution_id, claimed=claimed, following=following)
        except Exception as exc:
            log.exception("worker failed on %s", execution_id)
            events.put(("lost", execution_id, f"worker error: {exc}"))
        else:
            _report(events, execution_id, ran)
        # The id taken for next is never dropped: claimed with this run's end, or, when
        # that did not happen (this run failed, say), taken next and claimed as usual.
        for next_id in following.taken:
            next_claim = ran.next_claim if ran is not None and ran.next_id == next_id else None
            if next_claim is not None and next_claim.execution is None:
                events.put(("skipped", next_id, next_claim.reason, None))
            else:
                ahead.append((next_id, next_claim))
        following.taken.clear()
        if ran is not None and ran.stuck:
            # A Python step ignored the stop: end this process (and its threads) for good.
            os._exit(3)


def _report(events: Any, execution_id: str, ran: Any) -> None:
    """Tell the server how a run it handed out went."""
    got, done = ran.claim, ran.done
    if got.execution is None:
        events.put(("skipped", execution_id, got.reason, None))
    elif done is not None:
        events.put(
            (
                "finished",
                execution_id,
                done.status and done.status.value,
                done.job_id,
                done.retry_id,
                done.retry_at.isoformat() if done.retry_at else None,
                done.limited,
            )
        )


class LocalExecutor:
    """Keeps `settings.workers` worker processes alive and hands them execution ids."""

    reports_back = True  # every id handed out comes back as an event (skipped, finished...)

    def __init__(self, settings: Settings) -> None:
        # A step user that does not exist stops the server now, not every command step later.
        user = isolation.resolve_user(settings.step_user)
        if user is not None and user.switches and not isolation.can_switch_user():
            log.warning(
                "JOBPORT_STEP_USER=%s: this server (uid %d) may not change user; command "
                "steps will fail until it runs as root or with CAP_SETUID and CAP_SETGID",
                settings.step_user,
                os.geteuid(),
            )
        self.settings = settings
        self._tasks: Any = _ctx.Queue()
        self._events: Any = _ctx.Queue()
        self._procs: list[BaseProcess | None] = [None] * settings.workers
        self._stopping = threading.Event()
        self._on_event: EventSink | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, on_event: EventSink, ready_timeout: float = 60.0) -> None:
        """Start the workers and return once each has said it is ready (or on timeout)."""
        self._on_event = on_event
        for index in range(len(self._procs)):
            self._spawn(index)
        waiting, deadline = len(self._procs), time.monotonic() + ready_timeout
        while waiting and time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event[0] == "ready":
                waiting -= 1
            else:
                on_event(event)
        if waiting:
            log.warning(
                "%d worker(s) not ready after %.0fs; serving anyway", waiting, ready_timeout
            )
        thread = threading.Thread(target=self._watch_workers, name="executor-watch", daemon=True)
        thread.start()
        self._threads.append(thread)

    def attach(self, loop: asyncio.AbstractEventLoop, handle: EventSink) -> None:
        """Read the workers' events on the dispatcher's loop itself, as they arrive (no
        thread between the pipe and the loop: a run's end wakes its waiter one hop sooner)."""
        self._loop = loop
        loop.add_reader(self._events._reader.fileno(), self._read_events, handle)

    def detach(self) -> None:
        """Stop reading events (on the loop, before stop())."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._events._reader.fileno())
            self._loop = None

    def _read_events(self, handle: EventSink) -> None:
        for _ in range(1000):  # then let the loop serve others; it calls again while readable
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            except (EOFError, OSError):
                self.detach()
                return
            try:
                handle(event)
            except Exception:
                log.exception("event handler failed for %r", event)

    def _spawn(self, index: int) -> None:
        proc = _ctx.Process(
            target=worker_process,
            args=(index, self.settings.model_dump(), self._tasks, self._events),
            name=f"jobport-worker-{index}",
            daemon=True,
        )
        proc.start()
        self._procs[index] = proc

    def submit(self, execution_id: str) -> None:
        self._tasks.put(execution_id)

    def check(self) -> None:
        """Nothing to reach: the pool is in this process's hands."""

    def _watch_workers(self) -> None:
        node = os.uname().nodename
        while not self._stopping.wait(0.2):
            for index, proc in enumerate(self._procs):
                if proc is None or proc.is_alive() or self._stopping.is_set():
                    continue
                log.warning(
                    "worker %s (pid %s) exited with %s; replacing it",
                    index,
                    proc.pid,
                    proc.exitcode,
                )
                if self._on_event is not None:
                    self._on_event(("worker_died", f"{node}:{proc.pid}", proc.exitcode))
                self._spawn(index)

    def stop(self, timeout: float = 5.0) -> list[str]:
        """Ask workers to finish, kill those still busy after `timeout`; return their names."""
        self._stopping.set()
        node = os.uname().nodename
        killed: list[str] = []
        for _ in self._procs:
            with contextlib.suppress(Exception):
                self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self._procs:
            if proc is not None and proc.is_alive():
                killed.append(f"{node}:{proc.pid}")
                proc.kill()
                proc.join(2)
        for q in (self._tasks, self._events):
            q.cancel_join_thread()
            q.close()
        return killed
