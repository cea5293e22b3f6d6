"""Run one claimed execution: its steps in dependency order, in threads, with stop handling."""

from __future__ import annotations

import ctypes
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from jobport.domain.clock import utcnow
from jobport.domain.executions import (
    ErrorCode,
    Status,
    StepStatus,
    initial_step_states,
    to_result,
)
from jobport.domain.jobs import JobSpec, Step, result_step
from jobport.domain.values import clean
from jobport.engine import capture
from jobport.engine import steps as step_kinds
from jobport.engine.connections import ConnectionSource
from jobport.engine.logwriter import LogWriter
from jobport.engine.steps import StepContext, StepFailed, StepInterrupted, kinds
from jobport.engine.templating import TemplateError
from jobport.store.db import Database


@dataclass
class Outcome:
    status: Status
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    stuck: bool = False  # a step ignored the stop; the worker process must be replaced


def _stamp() -> str:
    return utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _interrupt_thread(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(StepInterrupted)
    )


# A stop's interrupt and a step's end never cross: an interrupt is sent, under this lock,
# only to a step still inside its call and not yet sealed, and a step thread seals its step
# under it before it takes another step; an interrupt sent before that is raised in the
# thread by then, and absorbed.
_INTERRUPTS = threading.Lock()

# Step threads are kept for the next run: starting and joining a thread pool for every run
# was a fifth of a worker's time on short runs. Made on first use in each process (a fork
# copies no thread). A run waits only on its own futures; a stuck step keeps its thread, and
# its worker process is replaced.
_POOL: tuple[int, ThreadPoolExecutor] | None = None
MAX_STEP_THREADS = 64


def _step_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(MAX_STEP_THREADS, thread_name_prefix="step"))
    return _POOL[1]


def _seal(rs: _RunningStep) -> None:
    """After a step: no interrupt meant for it may reach this thread's next step.

    One sent before the seal (at most one: _stop_step) was sent before this thread took the
    lock, so it is raised here, at the latest when the lock's release returns (a call
    checks for it), and absorbed. It is not cleared with PyThreadState_SetAsyncExc(id,
    NULL): that leaves the interpreter's pending flag set, and every thread of the process
    then takes the slow path of the eval loop for good (seen here: a main thread spinning
    in Condition.wait under a profiler).
    """
    while True:
        try:
            with _INTERRUPTS:
                rs.sealed = True
            return
        except StepInterrupted:  # the interrupt, spent here
            continue


class _RunningStep:
    def __init__(self, step: Step, stop: threading.Event) -> None:
        self.step = step
        self.stop = stop
        self.reason: Status | None = None
        self.thread_id: int | None = None
        self.in_call = False  # inside the step kind's run(): safe to interrupt
        self.sealed = False  # its thread has moved on: never interrupt it again
        self.stop_at: float | None = None
        self.deadline: float | None = (
            time.monotonic() + step.timeout_seconds if step.timeout_seconds else None
        )


_SPECS: dict[str, tuple[dict[str, Any], JobSpec]] = {}  # job id: (its stored spec, parsed)


def _spec_of(execution: dict[str, Any]) -> JobSpec:
    """The run's JobSpec, parsed once per job and spec in this worker (runs of one job
    mostly carry the same spec; a changed one is parsed again)."""
    stored = execution["spec"]
    known = _SPECS.get(execution["job_id"])
    if known is not None and known[0] == stored:
        return known[1]
    spec = JobSpec.model_validate(stored)
    if len(_SPECS) > 1000:
        _SPECS.clear()
    _SPECS[execution["job_id"]] = (stored, spec)
    return spec


class Run:
    """One execution in progress inside a worker."""

    def __init__(
        self,
        execution: dict[str, Any],
        logs: LogWriter,
        *,
        grace_seconds: float,
        connections: ConnectionSource | None = None,
        db: Database | None = None,
    ) -> None:
        self.execution = execution
        self.connections = connections
        self.spec = _spec_of(execution)
        self.logs = logs
        self.grace = grace_seconds
        self.states = {s["name"]: s for s in initial_step_states(execution["spec"])}
        self.version = 0  # bumped on every step state change, for the heartbeat
        self._stop_reason: Status | None = None
        self._stop_at: float | None = None
        self._lock = threading.Lock()
        self._running: dict[str, _RunningStep] = {}
        self._results: dict[str, Any] = {}
        self.db = db
        self.deadline: float | None = None
        # A foreach run's summary while it runs (engine/iteration.py); the heartbeat writes it.
        self.iteration: dict[str, Any] | None = None
        started = execution.get("started_at")
        self._context_base = {
            "params": {**self.spec.parameters, **(execution.get("parameters") or {})},
            "mode": execution.get("mode", "full"),
            "context": {**self.spec.context, **(execution.get("context") or {})},
            "execution": {
                "id": execution["id"],
                "trigger": execution.get("trigger"),
                "attempt": execution.get("attempt", 1),
                "startedAt": started.isoformat() if started else None,
            },
            "job": {
                "id": execution["job_id"],
                "name": execution["job_name"],
                "projectId": execution["project_id"],
            },
        }

    # -- control, from other threads -------------------------------------------------

    def request_stop(self, reason: Status) -> None:
        """Stop every running step; `reason` is CANCELLED or TIMED_OUT."""
        with self._lock:
            if self._stop_reason is not None:
                return
            self._stop_reason = reason
            self._stop_at = time.monotonic()
            running = list(self._running.values())
        self.logs.add(None, "system", f"stopping: {reason.value}", "warning")
        for rs in running:
            self._stop_step(rs, reason)

    def _stop_step(self, rs: _RunningStep, reason: Status) -> None:
        with _INTERRUPTS:  # once per step, and never after its thread sealed it
            if rs.stop.is_set():
                return
            rs.reason = reason
            rs.stop_at = time.monotonic()
            rs.stop.set()
            if (
                rs.step.kind == "python"
                and rs.thread_id is not None
                and rs.in_call
                and not rs.sealed
            ):
                _interrupt_thread(rs.thread_id)

    def context_base(self) -> dict[str, Any]:
        """What every template of this run sees (params, mode, context, execution, job)."""
        return self._context_base

    def results(self) -> dict[str, Any]:
        """The values of the steps that succeeded so far, by name."""
        return self._results

    def step_states(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self.states.values()]

    # -- the run ---------------------------------------------------------------------

    def _set_state(self, name: str, **values: Any) -> None:
        with self._lock:
            self.states[name].update(values)
            self.version += 1

    def execute(self) -> Outcome:
        spec = self.spec
        self.deadline = time.monotonic() + spec.timeout_seconds if spec.timeout_seconds else None
        if spec.foreach is not None:
            from jobport.engine import iteration

            return iteration.execute(self)
        failed, stuck = self.run_graph({s.name for s in spec.steps})
        return self.outcome(failed, stuck)

    def check_job_deadline(self) -> None:
        """Stop the run if the job's own timeout has passed."""
        if (
            self.deadline is not None
            and time.monotonic() > self.deadline
            and self._stop_reason is None
        ):
            self.logs.add(
                None, "system", f"job timed out after {self.spec.timeout_seconds}s", "error"
            )
            self.request_stop(Status.TIMED_OUT)

    @property
    def stop_reason(self) -> Status | None:
        return self._stop_reason

    def run_graph(self, names: set[str]) -> tuple[dict[str, tuple[str, str]], bool]:
        """Run the steps named, in dependency order, in threads: (failed steps with their
        error code and message, whether a step ignored its stop)."""
        spec = self.spec
        by_name = {s.name: s for s in spec.steps}
        waiting = [s.name for s in spec.steps if s.name in names]
        futures: dict[Future[None], str] = {}
        failed: dict[str, tuple[str, str]] = {}  # step -> (error code, message)
        pool = _step_pool()
        stuck = False
        try:
            while True:
                if self._stop_reason is None:
                    for name in list(waiting):
                        needs = by_name[name].needs
                        statuses = [self.states[n]["status"] for n in needs]
                        if any(st in (StepStatus.PENDING, StepStatus.RUNNING) for st in statuses):
                            continue
                        waiting.remove(name)
                        blocked = [
                            n
                            for n in needs
                            if self.states[n]["status"] != StepStatus.SUCCEEDED
                            and not by_name[n].continue_on_error
                        ]
                        if blocked:
                            self._set_state(
                                name,
                                status=StepStatus.SKIPPED.value,
                                error=f"skipped: {', '.join(blocked)} did not succeed",
                            )
                            continue
                        rs = _RunningStep(by_name[name], threading.Event())
                        with self._lock:
                            self._running[name] = rs
                        futures[pool.submit(self._step_thread, rs, failed)] = name
                if not futures:
                    break
                done, _ = wait(list(futures), timeout=0.05, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = futures.pop(fut)
                    with self._lock:
                        self._running.pop(name, None)
                    if fut.exception() is not None and self.states[name]["status"] == "running":
                        # An interrupt that landed after the step had already finished.
                        self._set_state(
                            name,
                            status=StepStatus.CANCELLED.value,
                            finishedAt=_stamp(),
                            error="interrupted",
                        )
                now = time.monotonic()
                self.check_job_deadline()
                with self._lock:
                    running = list(self._running.values())
                for rs in running:
                    if rs.deadline is not None and now > rs.deadline and not rs.stop.is_set():
                        self.logs.add(
                            rs.step.name,
                            "system",
                            f"step timed out after {rs.step.timeout_seconds}s",
                            "error",
                        )
                        self._stop_step(rs, Status.TIMED_OUT)
                if any(
                    rs.stop_at is not None and now > rs.stop_at + self.grace + 1.0 for rs in running
                ):
                    stuck = True
                    break
        finally:
            # Steps left only after a stuck step or an error of ours: those not started
            # never start, and the others are waited for (the pool is the process's, and
            # the next run must not share it with them), unless one ignored its stop.
            for fut in futures:
                fut.cancel()
            if futures and not stuck:
                wait(list(futures))
        for name in waiting:
            self._set_state(
                name,
                status=StepStatus.CANCELLED.value
                if self._stop_reason
                else StepStatus.SKIPPED.value,
            )
        if stuck:
            for name, rs in list(self._running.items()):
                timed_out = rs.reason == Status.TIMED_OUT
                error = "did not stop within the grace period; its worker was replaced"
                self._set_state(
                    name,
                    status=StepStatus.TIMED_OUT.value if timed_out else StepStatus.CANCELLED.value,
                    finishedAt=_stamp(),
                    error=error,
                )
                if timed_out:
                    failed[name] = (ErrorCode.TIMED_OUT, f"timed out; {error}")
        return failed, stuck

    def outcome(self, failed: dict[str, tuple[str, str]], stuck: bool) -> Outcome:
        steps = self.step_states()
        if self._stop_reason == Status.CANCELLED:
            return Outcome(
                Status.CANCELLED, None, ErrorCode.CANCELLED, "cancelled on request", steps, stuck
            )
        if self._stop_reason == Status.TIMED_OUT:
            return Outcome(
                Status.TIMED_OUT,
                None,
                ErrorCode.TIMED_OUT,
                f"job timed out after {self.spec.timeout_seconds}s",
                steps,
                stuck,
            )
        blocking = {
            n: v
            for n, v in failed.items()
            if not next(s for s in self.spec.steps if s.name == n).continue_on_error
        }
        if blocking:
            name, (code, message) = next(iter(blocking.items()))
            status = Status.TIMED_OUT if code == ErrorCode.TIMED_OUT else Status.FAILED
            return Outcome(status, None, code, f"step {name!r}: {message}", steps, stuck)
        result = to_result(self._results.get(result_step(self.spec)))
        return Outcome(Status.SUCCEEDED, result, None, None, steps, stuck)

    def _step_thread(self, rs: _RunningStep, failed: dict[str, tuple[str, str]]) -> None:
        try:
            self._run_step(rs, failed)
        finally:
            _seal(rs)

    def _run_step(self, rs: _RunningStep, failed: dict[str, tuple[str, str]]) -> None:
        step = rs.step
        rs.thread_id = threading.get_ident()
        name = step.name
        started = time.monotonic()
        self._set_state(name, status=StepStatus.RUNNING.value, startedAt=_stamp())
        self.logs.add(name, "system", f"step {name!r} ({step.kind}) started")
        with self._lock:
            context = {
                **self._context_base,
                "steps": {
                    n: {"result": r, "status": self.states[n]["status"]}
                    for n, r in self._results.items()
                },
            }
        status, code, error, value = self.call_step(rs, context, None)
        if status == StepStatus.SUCCEEDED:
            self._results[name] = value
            if isinstance(value, dict) and value.get("watermarkAfter") is not None:
                # Kept in the step's state, which conclude reads: recorded if the run
                # succeeds, whichever step gives the execution its result.
                self._set_state(name, watermarkAfter=clean(value["watermarkAfter"]))
        elapsed = time.monotonic() - started
        self._set_state(name, status=status.value, finishedAt=_stamp(), error=error)
        if status != StepStatus.SUCCEEDED:
            if self._stop_reason is None or status != StepStatus.CANCELLED:
                failed[name] = (code or ErrorCode.STEP_FAILED, error or "failed")
            self.logs.add(
                name,
                "system",
                f"step {name!r} {status.value} after {elapsed:.3f}s: {error}",
                "error",
            )
        else:
            self.logs.add(name, "system", f"step {name!r} succeeded in {elapsed:.3f}s")

    def call_step(
        self, rs: _RunningStep, context: dict[str, Any], iteration: int | None
    ) -> tuple[StepStatus, str | None, str | None, Any]:
        """Render and run one step in this thread, with its retries: (status, error code,
        error, value). `iteration` is a foreach item's index: its lines are the item's."""
        step = rs.step
        rs.thread_id = threading.get_ident()
        name = step.name
        module = kinds()[step.kind]
        logs = self.logs

        def log(stream: str, text: str) -> None:
            logs.add(name, stream, text, "error" if stream == "stderr" else "info", iteration)

        def log_lines(stream: str, texts: list[str]) -> None:
            level = "error" if stream == "stderr" else "info"
            logs.add_many(name, stream, texts, level, iteration)

        ctx = StepContext(
            self.execution["id"],
            name,
            log,
            rs.stop,
            self.grace,
            env={
                "JOBPORT_EXECUTION_ID": self.execution["id"],  # also marks its processes
                "JOBPORT_STEP": name,
                "JOBPORT_JOB": self.execution["job_name"],
                "JOBPORT_MODE": str(self.execution.get("mode") or "full"),
                "JOBPORT_ATTEMPT": str(self.execution.get("attempt") or 1),
                **({"JOBPORT_ITEM": str(iteration)} if iteration is not None else {}),
            },
            log_lines=log_lines,
            project_id=self.execution["project_id"],
            job_id=self.execution["job_id"],
            mode=str(self.execution.get("mode") or "full"),
        )
        if self.connections is not None:
            source, project_id, job_id = self.connections, ctx.project_id, ctx.job_id
            ctx.connection = lambda connection: source.resolve(project_id, connection)
            ctx.watermark = lambda: source.watermark(job_id, name)
        status, error, code, value = StepStatus.SUCCEEDED, None, None, None
        try:
            if rs.stop.is_set():  # stopped before the thread got going
                raise StepInterrupted()
            config = step_kinds.render(step.kind, step.config, context)
            for attempt in range(step.retries + 1):
                capture.route_to(log)
                try:
                    rs.in_call = True
                    try:
                        value = module.run(config, ctx)
                    finally:
                        rs.in_call = False
                    break
                except (StepFailed, Exception) as exc:
                    if isinstance(exc, StepFailed):
                        log("stderr", str(exc))
                    else:
                        log("stderr", "".join(traceback.format_exception(exc)).rstrip())
                    if attempt < step.retries and not rs.stop.is_set():
                        logs.add(
                            name,
                            "system",
                            f"attempt {attempt + 1} failed; retrying "
                            f"in {step.retry_delay_seconds}s",
                            "warning",
                            iteration,
                        )
                        if rs.stop.wait(step.retry_delay_seconds):
                            raise StepInterrupted() from None
                        continue
                    raise
                finally:
                    capture.route_to(None)
        except StepInterrupted:
            reason = rs.reason or self._stop_reason or Status.CANCELLED
            if reason == Status.TIMED_OUT:
                status, code = StepStatus.TIMED_OUT, ErrorCode.TIMED_OUT
                error = (
                    f"timed out after {step.timeout_seconds}s"
                    if rs.deadline is not None and rs.deadline <= time.monotonic()
                    else "timed out"
                    if self._stop_reason is None
                    else "job timed out"
                )
            else:
                status, code, error = StepStatus.CANCELLED, ErrorCode.CANCELLED, "cancelled"
        except TemplateError as exc:
            status, code, error = StepStatus.FAILED, ErrorCode.TEMPLATE_ERROR, str(exc)
            log("stderr", f"template error: {exc}")
        except StepFailed as exc:
            status, code, error = StepStatus.FAILED, ErrorCode.STEP_FAILED, str(exc)
        except Exception as exc:
            status, code = StepStatus.FAILED, ErrorCode.STEP_FAILED
            error = f"{type(exc).__name__}: {exc}"
        return status, code, error, value
