"""A worker keeps its threads across runs: step threads in one pool, one log flusher.

Reused threads must not carry anything from one run into the next: an interrupt meant for a
step that ended is cleared before its thread takes another step, and a log write that
failed in the background keeps its lines for the run's end.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jobport.domain.executions import Status
from jobport.domain.jobs import Step
from jobport.engine import logwriter, runner
from jobport.engine.logwriter import LogWriter
from jobport.engine.steps import StepInterrupted
from jobport.engine.worker import Worker
from jobport.settings import Settings
from jobport.store import executions as execution_store
from jobport.store import logs as log_store
from jobport.store.db import Database

sys.path.insert(0, str(Path(__file__).parent.parent / "store"))
from rows import add_execution, add_job, add_project


def python_job(db: Database, call: str, **kwargs: Any) -> dict[str, Any]:
    steps = [{"name": "go", "kind": "python", "config": {"callable": call, "kwargs": kwargs}}]
    with db.write() as conn:
        return add_job(conn, add_project(conn), steps=steps)


def queue(db: Database, job: dict[str, Any], n: int) -> list[str]:
    with db.write() as conn:
        return [add_execution(conn, job)["id"] for _ in range(n)]


def test_consecutive_runs_reuse_the_same_threads(sqlite: Database, tmp_path: Path) -> None:
    worker = Worker("test:1", Settings(database_url=sqlite.url), sqlite)
    job = python_job(sqlite, "fixtures_steps:thread_ident")
    idents = set()
    before = None
    for i, execution_id in enumerate(queue(sqlite, job, 30)):
        _, done, stuck = worker.run_one(execution_id)
        assert done is not None and done.status == Status.SUCCEEDED and not stuck
        with sqlite.read() as conn:
            idents.add(execution_store.find(conn, execution_id)["result"])
        if i == 1:
            before = threading.active_count()
    # One step thread took every step (the pool keeps it); no run left a thread behind.
    assert len(idents) == 1
    assert threading.active_count() == before
    assert [t.name for t in threading.enumerate()].count("log-flusher") == 1


def _step(kind: str = "python") -> runner._RunningStep:
    return runner._RunningStep(
        Step.model_validate({"name": "s", "kind": kind, "config": {"callable": "m:f"}}),
        threading.Event(),
    )


def _loop_a_while() -> None:
    """Bytecode for a pending asynchronous exception to be raised in, if one is pending."""
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        sum(range(100))


def test_an_interrupt_sent_as_a_step_ends_is_cleared_before_the_threads_next_step() -> None:
    """The stop is sent while the step thread waits for the lock to seal its step: the
    interrupt is raised in seal(), absorbed there, and the thread goes on clean."""
    rs = _step()
    escaped: list[BaseException] = []
    waiting = threading.Event()

    def step_thread() -> None:
        try:
            rs.thread_id, rs.in_call = threading.get_ident(), True
            rs.in_call = False  # the step returned
            waiting.set()
            runner._seal(rs)  # blocks: the stopper holds the lock and sends meanwhile
            _loop_a_while()  # the thread's next step
        except BaseException as exc:
            escaped.append(exc)

    with runner._INTERRUPTS:
        thread = threading.Thread(target=step_thread)
        thread.start()
        assert waiting.wait(5)
        time.sleep(0.05)  # the thread is in seal(), waiting for the lock
        runner._interrupt_thread(thread.ident or 0)  # sent when in_call was still seen true
    thread.join(5)
    assert not thread.is_alive()
    assert escaped == [] and rs.sealed


def test_without_the_seal_that_interrupt_would_reach_the_next_step() -> None:
    """The premise of the test above: a pending interrupt does land later in the thread."""
    escaped: list[BaseException] = []
    sent = threading.Event()

    def step_thread() -> None:
        try:
            sent.wait(5)
            _loop_a_while()
        except BaseException as exc:
            escaped.append(exc)

    thread = threading.Thread(target=step_thread)
    thread.start()
    runner._interrupt_thread(thread.ident or 0)
    sent.set()
    thread.join(5)
    assert [type(e) for e in escaped] == [StepInterrupted]


def test_a_sealed_step_is_never_interrupted() -> None:
    rs = _step()
    escaped: list[BaseException] = []
    go = threading.Event()

    def step_thread() -> None:
        try:
            go.wait(5)
            _loop_a_while()
        except BaseException as exc:
            escaped.append(exc)

    thread = threading.Thread(target=step_thread)
    thread.start()
    rs.thread_id, rs.in_call, rs.sealed = thread.ident, True, True
    run = runner.Run.__new__(runner.Run)  # _stop_step reads nothing else of the run
    run._stop_step(rs, Status.CANCELLED)
    go.set()
    thread.join(5)
    assert rs.stop.is_set() and escaped == []


def test_one_flusher_thread_writes_every_open_log(sqlite: Database) -> None:
    job = python_job(sqlite, "fixtures_steps:thread_ident")
    ids = queue(sqlite, job, 5)
    writers = [LogWriter(sqlite, i, interval=0.05, batch_lines=1000, max_bytes=10**6) for i in ids]
    for w in writers:
        w.start()
        w.add("go", "stdout", f"a line of {w.execution_id}")
    assert [t.name for t in threading.enumerate()].count("log-flusher") == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with sqlite.read() as conn:
            written = [log_store.read(conn, i, after=0, limit=10) for i in ids]
        if all(written):
            break
        time.sleep(0.02)
    assert all(len(lines) == 1 for lines in written), written
    assert all(w.drain() == ([], 0) for w in writers)


def test_a_background_write_that_fails_keeps_its_lines_for_the_runs_end(
    sqlite: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job = python_job(sqlite, "fixtures_steps:thread_ident")
    (execution_id,) = queue(sqlite, job, 1)
    real = log_store.append
    failures: list[int] = []

    def fails_twice(conn: Any, *args: Any) -> None:
        if len(failures) < 2:
            failures.append(1)
            raise RuntimeError("the disk is full")
        real(conn, *args)

    monkeypatch.setattr(logwriter.log_store, "append", fails_twice)
    writer = LogWriter(sqlite, execution_id, interval=0.02, batch_lines=1000, max_bytes=10**6)
    writer.start()
    writer.add("go", "stdout", "first")
    deadline = time.monotonic() + 5
    while len(failures) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.add("go", "stdout", "second")
    time.sleep(0.1)  # the flusher's next turn writes both, in order
    lines, _ = writer.drain()
    with sqlite.read() as conn:
        stored = [ln["text"] for ln in log_store.read(conn, execution_id, after=0, limit=10)]
    assert failures == [1, 1]
    assert stored + [ln["text"] for ln in lines] == ["first", "second"]
    said = [r for r in caplog.records if r.getMessage().startswith("writing the log of")]
    assert len(said) == 1  # once per run, not at every interval
