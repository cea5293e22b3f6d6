"""The scheduler's loop: sleep until a fire is due, a schedule changed or the poll, then fire."""

# What a pass does (plan, record exactly once, start, advance) is services/firing.py's; this
# loop only decides when to run one and announces the runs it started once they committed.

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from jobport.domain.clock import utcnow
from jobport.services import firing
from jobport.services.runtime import Runtime

log = logging.getLogger("jobport.scheduler")


@dataclass
class Scheduler:
    """Fires due schedules. `tick(now)` does one pass; `run()` loops until stopped.

    `clock` is injectable so tests drive time without sleeping.
    """

    rt: Runtime
    clock: Callable[[], dt.datetime] = utcnow
    batch_size: int | None = None
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def tick(self, now: dt.datetime | None = None) -> int:
        """Handle every fire due at `now`; returns how many fires were recorded."""
        now = now or self.clock()
        batch_size = self.batch_size or self.rt.settings.scheduler_batch_size
        handled = 0
        # Each batch is announced as soon as it commits: the first runs start while later
        # batches are still being fired.
        for batch in firing.fire_due(self.rt, now, batch_size=batch_size):
            batch.announce(self.rt)
            handled += batch.count
        return handled

    def wake(self) -> None:
        """Look at the schedules again now (one was added, changed or removed)."""
        self._wake.set()

    def seconds_to_next(self) -> float:
        """How long the loop may sleep: until the earliest fire, at most the poll interval."""
        poll = self.rt.settings.scheduler_poll_seconds
        earliest = firing.next_due(self.rt)
        if earliest is None:
            return poll
        return max(0.0, min(poll, (earliest - self.clock()).total_seconds()))

    def run(self) -> None:
        """Fire schedules until stop() is called (blocks: run it on its own thread)."""
        unsubscribe = firing.on_change(self.wake)
        try:
            for delay in self._passes():
                self._wake.wait(delay)
        finally:
            unsubscribe()

    def _passes(self) -> Iterator[float]:
        while not self._stop.is_set():
            # Cleared before the pass: a change made during it wakes the next sleep at once.
            self._wake.clear()
            try:
                self.tick(self.clock())
                delay = self.seconds_to_next()
            except Exception:
                log.exception("scheduler pass failed; retrying")
                delay = self.rt.settings.scheduler_poll_seconds
            if self._stop.is_set():
                return
            yield delay

    def start(self) -> None:
        """Run the loop on a daemon thread (inside `jobport serve`)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="jobport-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop (it finishes its pass) and wait up to `timeout` s for its thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
