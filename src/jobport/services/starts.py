"""Group commit of starts: many requests' runs in one write transaction.

A server under load receives many execute requests at once. Each used to take a thread of its
own and a write transaction of its own: on SQLite every one queued for the one writer lock
(and met the other processes' writes there), on PostgreSQL every one paid its commit round
trip. `StartQueue` gives the starts to writer threads that each take every start waiting,
up to `MAX_BATCH`, and commit them in one transaction, reading each project and job once per
batch. A request is answered only after the commit: a 202 still means the run is durable.

One start that fails (an unknown job, a parameter refused, a clash) must not fail the others:
the batch is rolled back and every start of it runs again in a transaction of its own, so
each caller gets exactly what `executions.start` alone would have given it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from jobport.domain.executions import Execution, StartRequest
from jobport.services import executions
from jobport.services.runtime import Runtime

log = logging.getLogger("jobport.starts")

MAX_BATCH = 64


@dataclass
class _Start:
    project: str
    job: str
    request: StartRequest
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[tuple[Execution, bool]]


_STOP = object()


class StartQueue:
    """Writer threads that commit queued starts in batches (`start` is awaited by requests)."""

    def __init__(self, rt: Runtime, writers: int | None = None) -> None:
        self._rt = rt
        # SQLite has one writer: more threads would only queue for its lock. On PostgreSQL
        # a few batches commit side by side while others wait for their round trips.
        self._writers = writers or (1 if rt.db.is_sqlite else 4)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Starts are taken from construction until stop(); the writers may start later (the
        # queued ones then form their first batch).
        self._accepting = True
        self._gate = threading.Lock()

    def start_threads(self) -> None:
        for n in range(self._writers):
            thread = threading.Thread(target=self._run, name=f"jobport-starts-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then end the writer threads; later starts go alone."""
        with self._gate:
            self._accepting = False
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        left = []  # queued behind a stop, or never given a writer
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item)
        if left:
            self._commit(left)

    async def start(self, project: str, job: str, request: StartRequest) -> tuple[Execution, bool]:
        """executions.start, committed with whatever other starts are waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Execution, bool]] = loop.create_future()
        with self._gate:
            queued = self._accepting
            if queued:
                self._queue.put(_Start(project, job, request, loop, future))
        if not queued:  # stopped: alone, in a thread
            return await asyncio.to_thread(executions.start, self._rt, project, job, request)
        return await future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Start]) -> None:
        try:
            started = executions.start_batch(
                self._rt, [(s.project, s.job, s.request) for s in batch]
            )
        except Exception:
            # One of them failed, or the transaction did: each alone, so every caller gets
            # its own answer (and its own error) as if it had come alone.
            for item in batch:
                try:
                    result = executions.start(self._rt, item.project, item.job, item.request)
                except BaseException as exc:  # handed to the caller, raised there
                    _settle(item, error=exc)
                else:
                    _settle(item, result=result)
            return
        for item, result in zip(batch, started, strict=True):
            _settle(item, result=result)


def _settle(
    item: _Start,
    *,
    result: tuple[Execution, bool] | None = None,
    error: BaseException | None = None,
) -> None:
    def settle() -> None:
        if item.future.done():  # the request went away meanwhile
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)  # type: ignore[arg-type]

    try:
        item.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # its loop is closed: nobody waits any more
        log.debug("a start's requester is gone")


async def start(
    rt: Runtime, project: str, job: str, request: StartRequest
) -> tuple[Execution, bool]:
    """Queue a run of the job (executions.start), committed in a batch when the server runs
    a StartQueue; alone, in a thread, otherwise."""
    if rt.starts is not None:
        return await rt.starts.start(project, job, request)  # type: ignore[no-any-return]
    return await asyncio.to_thread(executions.start, rt, project, job, request)
