"""Buffer an execution's log lines and write them to the store in batches, under a cap."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from jobport.domain.clock import utcnow
from jobport.domain.values import clean_text
from jobport.store import items as item_store
from jobport.store import logs as log_store
from jobport.store.db import Database

MAX_LINE_CHARS = 64 * 1024
log = logging.getLogger("jobport.logs")


class _Flusher:
    """The one thread of a process that writes its open LogWriters' lines in the background.

    One for all of them rather than one per run: a worker runs thousands of short runs, and
    a thread started and joined for each was a tenth of its time. It is started on first
    use in each process (a fork copies no thread), and waits the shortest interval of the
    writers it serves, or until one is full.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._writers: dict[LogWriter, None] = {}  # in the order they came
        self._running = False
        self._poked = False
        self._interval = 0.0  # what the thread waits at most between turns

    def attach(self, writer: LogWriter) -> None:
        with self._cond:
            self._writers[writer] = None
            if not self._running:
                self._running = True
                self._interval = writer.interval
                threading.Thread(target=self._run, name="log-flusher", daemon=True).start()
            elif writer.interval < self._interval:
                self._interval = writer.interval
                self._cond.notify()  # waiting longer than this writer allows

    def detach(self, writer: LogWriter) -> None:
        with self._cond:
            self._writers.pop(writer, None)

    def poke(self) -> None:
        """A writer is full: flush now rather than at the interval."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def _run(self) -> None:
        cond = self._cond  # this process's, even if a fork resets the attribute
        while True:
            with cond:
                if not self._poked:
                    # Not woken for each writer that comes (a wake per run costs the run
                    # more than the thread does): when idle it waits the last interval.
                    cond.wait(self._interval)
                self._poked = False
                writers = list(self._writers)
                if writers:
                    self._interval = min(w.interval for w in writers)
            for writer in writers:
                try:
                    writer.flush()
                except Exception:  # the lines went back to its buffer: drain() writes them
                    if not writer.write_failed:  # said once per run, not every interval
                        log.exception("writing the log of %s failed", writer.execution_id)
                    writer.write_failed = True


_FLUSHER = _Flusher()


class LogWriter:
    """Collects lines from any thread; the process's flusher thread writes them every
    `interval`, or sooner when `batch_lines` wait.

    The last batch is not written by `close()` but handed over with `drain()` so that it
    lands in the same transaction as the execution's final status.

    A foreach run's item ends (`item_ended`) ride in the same transactions as the lines, so
    an item's status and its last lines are durable together, without a write of their own.
    """

    def __init__(
        self,
        db: Database,
        execution_id: str,
        *,
        interval: float,
        batch_lines: int,
        max_bytes: int,
        after: tuple[int, int] = (0, 0),
    ) -> None:
        """`after`: the (lines, bytes) the execution logged already, when a resumed foreach
        run goes on writing its log."""
        self.db = db
        self.execution_id = execution_id
        self.interval = interval
        self.batch_lines = batch_lines
        self.max_bytes = max_bytes
        self._buffer: list[dict[str, Any]] = []
        self._buffer_bytes = 0
        self._items: list[dict[str, Any]] = []
        # Told of item records once they are committed (engine/iteration.py counts them).
        self.on_written: Callable[[list[dict[str, Any]]], None] | None = None
        self._write_lock = threading.Lock()  # one writer at a time: records stay in order
        self._seq, self._total_bytes = after
        self._dropped = 0
        self._truncated = False
        self._cond = threading.Condition()
        self._closed = False
        self._started = False
        self.write_failed = False  # a background write failed (its lines were kept)

    def start(self) -> None:
        """Have the background flusher write this writer's lines until drain()."""
        self._started = True
        _FLUSHER.attach(self)

    def add(
        self,
        step: str | None,
        stream: str,
        text: str,
        level: str = "info",
        iteration: int | None = None,
    ) -> None:
        self.add_many(step, stream, [text], level, iteration)

    def item_ended(self, ended: dict[str, Any]) -> None:
        """An item's end ({idx, status, attempts, started_at, finished_at, error}), written
        with the next batch."""
        with self._cond:
            self._items.append(ended)
            full = len(self._items) >= self.batch_lines
        if full and self._started:
            _FLUSHER.poke()

    def add_many(
        self,
        step: str | None,
        stream: str,
        texts: list[str],
        level: str = "info",
        iteration: int | None = None,
    ) -> None:
        """Append lines that arrived together (one timestamp, one lock for all of them)."""
        at = utcnow()
        with self._cond:
            for text in texts:
                if self._truncated:
                    self._dropped += 1
                    continue
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + " [line cut]"
                text = clean_text(text)  # a NUL or lone surrogate no store could keep
                size = len(text) + 1 if text.isascii() else len(text.encode("utf-8", "replace")) + 1
                line_step, line_stream, line_level = step, stream, level
                if self._total_bytes + size > self.max_bytes:
                    self._truncated = True
                    self._dropped += 1
                    text = (
                        f"[log truncated: the limit of {self.max_bytes} bytes per execution was "
                        "reached; later lines are dropped]"
                    )
                    line_step, line_stream, line_level = None, "system", "warning"
                    size = len(text) + 1
                self._seq += 1
                self._total_bytes += size
                self._buffer_bytes += size
                self._buffer.append(
                    {
                        "seq": self._seq,
                        "at": at,
                        "step": line_step,
                        "stream": line_stream,
                        "level": line_level,
                        "text": text,
                        "iteration": iteration,
                    }
                )
            full = len(self._buffer) >= self.batch_lines
        if full and self._started:
            _FLUSHER.poke()

    @property
    def dropped(self) -> int:
        return self._dropped

    def _take(self) -> tuple[list[dict[str, Any]], int]:
        lines, nbytes = self._buffer, self._buffer_bytes
        self._buffer, self._buffer_bytes = [], 0
        return lines, nbytes

    def flush(self) -> None:
        """Write what waits now (the flusher's turn), unless drain() has begun. If the write
        fails the lines go back, first in the buffer, for the next turn or drain()."""
        with self._write_lock:
            with self._cond:
                if self._closed:
                    return
                lines, nbytes = self._take()
                ended, self._items = self._items, []
            if not (lines or ended):
                return
            try:
                self._write(lines, nbytes, ended)
            except BaseException:
                with self._cond:
                    self._buffer[:0] = lines
                    self._buffer_bytes += nbytes
                    self._items[:0] = ended
                raise

    def _write(self, lines: list[dict[str, Any]], nbytes: int, ended: list[dict[str, Any]]) -> None:
        with self.db.write() as conn:
            log_store.append(conn, self.execution_id, lines, nbytes)
            item_store.record(conn, self.execution_id, ended)
        if ended and self.on_written is not None:
            self.on_written(ended)

    def flush_items(self) -> None:
        """Write the item records taken so far now (a foreach run's end counts them all)."""
        with self._write_lock:
            with self._cond:
                ended, self._items = self._items, []
            if ended:
                self._write([], 0, ended)

    def drain(self) -> tuple[list[dict[str, Any]], int]:
        """Stop the background writes and return what they had not written yet. A write in
        progress ends first: flush_items() waits for the write lock it holds."""
        with self._cond:
            self._closed = True
        _FLUSHER.detach(self)
        self.flush_items()  # before the run's end is written: its summary counts these
        with self._cond:
            if self._dropped > 1:
                self._seq += 1
                text = f"[log truncated: {self._dropped} lines dropped in all]"
                self._buffer.append(
                    {
                        "seq": self._seq,
                        "at": utcnow(),
                        "step": None,
                        "stream": "system",
                        "level": "warning",
                        "text": text,
                    }
                )
                self._buffer_bytes += len(text) + 1
            return self._take()
