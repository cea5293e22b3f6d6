"""Executors: how an execution id reaches a worker (local process pool, Celery)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# Events an executor reports back, as tuples:
#   ("ready", worker_name)                           a (re)started worker can take work
#   ("skipped", execution_id, reason, job_id)        reason: gone | not_due | blocked
#   ("finished", execution_id, status, job_id, retry_id, retry_at_iso, limited)
#   ("lost", execution_id, reason)                   the worker failed on it
#   ("worker_died", worker_name, exit_code)          what it held is lost, and maybe ids it took
Event = tuple[Any, ...]
EventSink = Callable[[Event], None]


class Executor(Protocol):
    # True: every id handed out comes back as an event (the local pool), so an id is handed
    # out again only after its event. False (Celery): nothing comes back; the sweep hands
    # out again what stayed queued for `republish_seconds`.
    reports_back: bool

    def start(self, on_event: EventSink) -> None: ...

    def attach(self, loop: Any, handle: EventSink) -> None:
        """Deliver events to `handle` on `loop` from now on (called on the loop after start)."""
        ...

    def detach(self) -> None:
        """Stop delivering on the loop (called on the loop before stop)."""
        ...

    def submit(self, execution_id: str) -> None: ...

    def check(self) -> None:
        """Raise if what the executor needs (a broker) cannot be reached now."""
        ...

    def stop(self, timeout: float) -> list[str]:
        """Stop; return the names of workers killed while busy (their runs are lost)."""
        ...
