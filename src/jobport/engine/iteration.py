"""A foreach run inside a worker (domain/iteration.py says what `foreach` means).

1. The steps that give the items (a step source and what it needs) run once, as a plain
   run's steps do (`Run.run_graph`).
2. The items are resolved once, filtered by the query (mongoquery) and stored, all pending
   (store/items.py). A resumed run (its worker died: engine/lifecycle.conclude_lost) finds
   them stored and skips step 1.
3. Items start in index order, at most `concurrency` at a time and `delaySeconds` apart.
   Each runs the remaining steps in dependency order in one thread, with `item`,
   `iteration`, `context` and `accumulator` in its templates, under its own timeout, and
   is tried again as `retryOnFailure`, `retryOnTimeout` and `retries` say.
4. An item's end is written with the log lines it wrote (LogWriter.item_ended): a
   succeeded item is never run again, and an item that was running when the worker died
   is run again when the run resumes.
5. A stop (cancel, the job's timeout) starts no more items and stops the running ones;
   they stay pending and count as `remaining`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mongoquery import Query, QueryError

from jobport.domain.clock import utcnow
from jobport.domain.executions import ErrorCode, Status, StepStatus, to_result
from jobport.domain.iteration import MAX_ITEMS, ForEach, ItemStatus, summary
from jobport.domain.jobs import Step, topological_order
from jobport.domain.values import clean
from jobport.engine.runner import Outcome, Run, _RunningStep, _stamp
from jobport.store import items as item_store

SOURCE_STEP = "foreach.source"  # the name a sql, http or table source's lines carry


class ItemsUnavailable(Exception):
    """The source did not give a list of items; the message says why."""


@dataclass
class _Item:
    index: int
    value: Any
    attempts: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    current: _RunningStep | None = None
    deadline: float | None = None
    started_at: Any = None
    reason: Status | None = None  # why it was stopped
    abandoned: bool = False  # its step ignored the stop: given up, its thread left behind
    accumulator: Any = None  # what its result step set the run's accumulator to
    sets_accumulator: bool = False


MAX_ABANDONED = 10  # items whose steps ignore a stop that a run leaves behind before it ends


class _Iteration:
    def __init__(self, run: Run, foreach: ForEach) -> None:
        self.run = run
        self.foreach = foreach
        once = run.spec.once_steps()
        self.steps = [s for s in run.spec.steps if s.name not in once]
        order = topological_order(self.steps)
        by_name = {s.name: s for s in self.steps}
        self.order = [by_name[name] for name in order]
        marked = [s.name for s in self.steps if s.result]
        self.result_step = marked[0] if marked else self.steps[-1].name
        self.lock = threading.Lock()
        # Counts and accumulator of the ends that are durable (LogWriter.on_written): what the
        # summary shows, so a crash never re-runs an item the summary said had succeeded.
        self.counts: dict[str, int] = {}
        self.durable_accumulator: Any = None
        self.unwritten = 0  # ends taken but not yet committed: still in progress
        self.total = 0
        self.accumulator: Any = None  # the newest value, which the next items see
        self.running: dict[int, _Item] = {}
        self.closed = False  # the loop is over: a late end (a left-behind thread) is ignored
        self.resumes = int((run.execution.get("iteration") or {}).get("resumes", 0))

    # -- the summary the heartbeat writes ------------------------------------------------

    def publish(self) -> None:
        with self.lock:
            in_progress = len(self.running) + self.unwritten
            counts = {**self.counts, ItemStatus.RUNNING.value: in_progress}
            self.run.iteration = {
                **summary(counts, self.total),
                "accumulator": self.durable_accumulator,
                "resumes": self.resumes,
            }
        self.run.version += 1  # the heartbeat writes what changed

    # -- the items -------------------------------------------------------------------------

    def items(self) -> list[dict[str, Any]]:
        """The stored items of this run, resolving and storing them first if need be."""
        db = self.run.db
        assert db is not None, "a foreach run needs the database"
        execution_id = self.run.execution["id"]
        with db.read() as conn:
            stored = item_store.load(conn, execution_id)
        if stored:
            self.run.logs.add(
                None,
                "system",
                f"resuming: {sum(1 for s in stored if s['status'] in _FINAL)} of "
                f"{len(stored)} items had ended",
            )
            return stored
        values = self.resolve()
        given = len(values)
        query = self.foreach.query
        if query:
            matcher = Query(query)
            try:
                values = [v for v in values if matcher.match(v)]
            except (QueryError, TypeError, ValueError) as exc:
                raise ItemsUnavailable(f"the query cannot be evaluated: {exc}") from None
        if len(values) > MAX_ITEMS:
            raise ItemsUnavailable(f"the source gave {len(values)} items; at most {MAX_ITEMS}")
        values = [clean(v) for v in values]
        with db.write() as conn:
            if item_store.count(conn, execution_id) == 0:
                item_store.insert_pending(conn, execution_id, values)
            stored = item_store.load(conn, execution_id)
        what = f"{len(stored)} items" + (f" of {given} match the query" if query else "")
        self.run.logs.add(None, "system", f"foreach: {what}")
        return stored

    def resolve(self) -> list[Any]:
        source = self.foreach.source
        if source.items is not None:
            return list(source.items)
        if source.step is not None:
            value = self.run.results().get(source.step)
            return _list_in(value, source.path, f"step {source.step!r}'s result", "records")
        if source.sql is not None:
            config = {"maxRows": MAX_ITEMS, **source.sql}
            return _list_in(self._call("sql", config), None, "the sql source", "records")
        if source.http is not None:
            answer = self._call("http", source.http)
            path = source.path
            if path is None:
                body = answer.get("body") if isinstance(answer, dict) else None
                path = "body" if isinstance(body, list) else "body.items"
            return _list_in(answer, path, "the http source's answer", None)
        assert source.table is not None
        table = source.table
        quote = _quoter(self.run, table.connection)
        name = ".".join(quote(part) for part in table.table.split("."))
        config = {"connection": table.connection, "query": f"SELECT * FROM {name}"}
        config["maxRows"] = MAX_ITEMS
        return _list_in(self._call("sql", config), None, f"table {table.table!r}", "records")

    def _call(self, kind: str, config: dict[str, Any]) -> Any:
        step = Step(name=SOURCE_STEP, kind=kind, config=config)
        rs = _RunningStep(step, threading.Event())
        with self.run._lock:
            self.run._running[SOURCE_STEP] = rs
        try:
            status, _, error, value = self.run.call_step(rs, self.run.context_base(), None)
        finally:
            with self.run._lock:
                self.run._running.pop(SOURCE_STEP, None)
        if status != StepStatus.SUCCEEDED:
            raise ItemsUnavailable(f"the {kind} source {status.value}: {error}")
        return to_result(value) if kind == "sql" else value

    # -- what is durable -------------------------------------------------------------------

    def written(self, ended: list[dict[str, Any]]) -> None:
        """LogWriter.on_written: these item records are committed."""
        with self.lock:
            for record in ended:
                status = record["status"]
                if status not in _FINAL:
                    continue  # running or cancelled: not an end
                self.unwritten -= 1
                self.counts[status] = self.counts.get(status, 0) + 1
                if "accumulator" in record:
                    self.durable_accumulator = record["accumulator"]
        self.publish()

    def _record(self, item: _Item, status: ItemStatus, error: str | None, **extra: Any) -> None:
        self.run.logs.item_ended(
            {
                "idx": item.index,
                "status": status.value,
                "attempts": item.attempts,
                "started_at": item.started_at,
                "finished_at": utcnow() if status.is_final else None,
                "error": error,
                **extra,
            }
        )

    def _end(self, item: _Item, status: ItemStatus, error: str | None, **extra: Any) -> bool:
        """Account for an item's end once (False when it already was: left behind, or the
        loop is over); a final end counts once it is written."""
        with self.lock:
            if self.closed or self.running.pop(item.index, None) is None:
                return False
            if status.is_final:
                self.unwritten += 1
            self._record(item, status, error, **extra)
        return True

    # -- running them ------------------------------------------------------------------------

    def loop(self, stored: list[dict[str, Any]]) -> bool:
        """Run every item that has not ended; True if a step ignored its stop."""
        foreach, run = self.foreach, self.run
        self.total = len(stored)
        for row in stored:
            if row["status"] in _FINAL:
                self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        self.accumulator = (run.execution.get("iteration") or {}).get("accumulator")
        self.durable_accumulator = self.accumulator
        run.logs.on_written = self.written
        todo = [
            _Item(r["idx"], r["item"], r["attempts"]) for r in stored if r["status"] not in _FINAL
        ]
        todo.reverse()  # pop() takes the lowest index first
        self.publish()
        futures: dict[Future[None], _Item] = {}
        pool = ThreadPoolExecutor(
            max_workers=foreach.concurrency + MAX_ABANDONED, thread_name_prefix="item"
        )
        next_start = 0.0
        stuck = False
        abandoned = 0
        try:
            while todo or futures:
                now = time.monotonic()
                while (
                    todo
                    and run.stop_reason is None
                    and len(futures) < foreach.concurrency
                    and now >= next_start
                ):
                    item = todo.pop()
                    item.started_at = utcnow()
                    with self.lock:
                        self.running[item.index] = item
                        self._record(item, ItemStatus.RUNNING, None)
                    self.publish()
                    futures[pool.submit(self._run_item, item)] = item
                    next_start = now + foreach.delay_seconds
                if run.stop_reason is not None and not futures:
                    break
                timeout = 0.05
                if todo and len(futures) < foreach.concurrency and run.stop_reason is None:
                    timeout = min(timeout, max(next_start - now, 0.0))
                if futures:
                    done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
                    for fut in done:
                        futures.pop(fut)
                        if fut.exception() is not None:  # an interrupt after the item ended
                            pass
                elif timeout > 0:
                    time.sleep(timeout)
                run.check_job_deadline()
                for item in self._watch(list(futures.values())):
                    stuck = True  # the worker process is replaced after this run
                    abandoned += 1
                    futures = {f: i for f, i in futures.items() if i is not item}
                    self._abandon(item)
                if abandoned >= MAX_ABANDONED:
                    run.logs.add(
                        None,
                        "system",
                        f"{abandoned} items ignored their stop: no more items start",
                        "error",
                    )
                    for item in futures.values():  # they stay pending: none is lost
                        self._stop(item, Status.CANCELLED)
                        self._end(item, ItemStatus.CANCELLED, "the run stopped starting items")
                    break
        finally:
            pool.shutdown(wait=not stuck, cancel_futures=True)
        with self.lock:
            self.closed = True
            self.running.clear()
        run.logs.flush_items()  # every end durable, so the outcome counts them all
        self.publish()
        return stuck

    def _abandon(self, item: _Item) -> None:
        """An item whose step did not stop within the grace period: it ends timed out (a
        cancelled one stays pending), and its thread is left to the worker's replacement."""
        timed_out = item.reason == Status.TIMED_OUT
        error = "did not stop within the grace period; its worker is replaced"
        status = ItemStatus.TIMED_OUT if timed_out else ItemStatus.CANCELLED
        item.abandoned = True
        if self._end(item, status, f"timed out; {error}" if timed_out else error):
            self.run.logs.add(None, "system", f"item {item.index}: {error}", "error", item.index)
        self.publish()

    def _watch(self, running: list[_Item]) -> list[_Item]:
        """Stop items past their timeout, or all of them on a stop; the items whose step
        has ignored its stop for longer than the grace period."""
        now = time.monotonic()
        reason = self.run.stop_reason
        stuck = []
        for item in running:
            rs = item.current
            if reason is not None and not item.stop.is_set():
                self._stop(item, reason)
            elif item.deadline is not None and now > item.deadline and not item.stop.is_set():
                self.run.logs.add(
                    None,
                    "system",
                    f"item {item.index} timed out after {self.foreach.timeout_seconds}s",
                    "error",
                    item.index,
                )
                self._stop(item, Status.TIMED_OUT)
            elif rs is not None and rs.deadline is not None and now > rs.deadline:
                self.run._stop_step(rs, Status.TIMED_OUT)  # the step's own timeout
            if rs is not None and rs.stop_at is not None and now > rs.stop_at + self.run.grace + 1:
                stuck.append(item)
        return stuck

    def _stop(self, item: _Item, reason: Status) -> None:
        item.reason = reason
        rs = item.current
        if rs is not None:
            self.run._stop_step(rs, reason)  # sets item.stop, the event its steps share
        item.stop.set()

    def _run_item(self, item: _Item) -> None:
        foreach = self.foreach
        status, error = ItemStatus.FAILED, None
        while True:
            item.attempts += 1
            item.stop.clear()
            item.reason = None
            if foreach.timeout_seconds is not None:
                item.deadline = time.monotonic() + foreach.timeout_seconds
            status, error = self._attempt(item)
            if self.run.stop_reason is not None and status != ItemStatus.SUCCEEDED:
                status = ItemStatus.CANCELLED
                break
            retry = (status == ItemStatus.FAILED and foreach.retry_on_failure) or (
                status == ItemStatus.TIMED_OUT and foreach.retry_on_timeout
            )
            if not retry or item.attempts > foreach.retries or item.abandoned:
                break
            self.run.logs.add(
                None,
                "system",
                f"item {item.index} {status.value} (attempt {item.attempts}); trying again "
                f"in {foreach.retry_delay_seconds}s",
                "warning",
                item.index,
            )
            if self._sleep(foreach.retry_delay_seconds):
                status = ItemStatus.CANCELLED
                break
        extra = {"accumulator": item.accumulator} if item.sets_accumulator else {}
        if not self._end(item, status, error, **extra):
            return  # left behind (_abandon accounted for it), or the loop is over
        took = (utcnow() - item.started_at).total_seconds()
        tries = f" ({item.attempts} attempts)" if item.attempts > 1 else ""
        self.run.logs.add(
            None,
            "system",
            f"item {item.index} {status.value} in {took:.3f}s{tries}"
            + (f": {error}" if error and status != ItemStatus.SUCCEEDED else ""),
            "info" if status == ItemStatus.SUCCEEDED else "error",
            item.index,
        )
        self.publish()

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless the run stops first (True)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.run.stop_reason is not None:
                return True
            time.sleep(min(0.05, max(end - time.monotonic(), 0)))
        return self.run.stop_reason is not None

    def _attempt(self, item: _Item) -> tuple[ItemStatus, str | None]:
        run = self.run
        results: dict[str, Any] = {}
        states: dict[str, str] = {}
        base = run.context_base()
        with self.lock:
            accumulator = self.accumulator
        for step in self.order:
            blocked = [
                n
                for n in step.needs
                if states.get(n) != StepStatus.SUCCEEDED
                and not next(s for s in self.steps if s.name == n).continue_on_error
            ]
            if blocked:
                states[step.name] = StepStatus.SKIPPED
                continue
            context = {
                **base,
                "item": item.value,
                "iteration": {"index": item.index, "attempt": item.attempts},
                "accumulator": accumulator,
                "steps": {n: {"result": r, "status": states[n]} for n, r in results.items()},
            }
            rs = _RunningStep(step, item.stop)
            item.current = rs
            if item.stop.is_set():
                rs.reason = item.reason
            status, _code, error, value = run.call_step(rs, context, item.index)
            item.current = None
            states[step.name] = status
            if status == StepStatus.SUCCEEDED:
                results[step.name] = value
                continue
            run.logs.add(
                step.name, "system", f"step {step.name!r} {status.value}: {error}", "error",
                item.index,
            )  # fmt: skip
            if status == StepStatus.TIMED_OUT or item.reason == Status.TIMED_OUT:
                return ItemStatus.TIMED_OUT, error
            if status == StepStatus.CANCELLED:
                return ItemStatus.CANCELLED, error
            if not step.continue_on_error:
                return ItemStatus.FAILED, f"step {step.name!r}: {error}"
        value = results.get(self.result_step)
        if isinstance(value, dict) and "accumulator" in value:
            item.accumulator, item.sets_accumulator = clean(value["accumulator"]), True
            with self.lock:
                self.accumulator = item.accumulator
        return ItemStatus.SUCCEEDED, None


_FINAL = (ItemStatus.SUCCEEDED.value, ItemStatus.FAILED.value, ItemStatus.TIMED_OUT.value)


def _list_in(value: Any, path: str | None, what: str, default_key: str | None) -> list[Any]:
    """The list at `path` (dotted) inside `value`; without a path, `value` itself when it is
    a list, else its `default_key`."""
    found = value
    if path:
        for part in path.split("."):
            if isinstance(found, dict) and part in found:
                found = found[part]
            elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
                found = found[int(part)]
            else:
                raise ItemsUnavailable(f"{what} has nothing at {path!r}")
    elif not isinstance(found, list) and isinstance(found, dict) and default_key in found:
        found = found[default_key]
    if not isinstance(found, list):
        where = f" at {path!r}" if path else ""
        raise ItemsUnavailable(f"{what}{where} is not a list of items")
    return found


def _quoter(run: Run, connection: str) -> Any:
    """Quote an identifier for the connection's database (double quotes, backticks on
    MySQL and MariaDB); the table name's pattern already refuses quotes of either kind."""
    backend = ""
    if run.connections is not None:
        resolved = run.connections.resolve(run.execution["project_id"], connection)
        backend = str(getattr(resolved, "url", "")).split(":", 1)[0].split("+", 1)[0].lower()
    if backend in ("mysql", "mariadb"):
        return lambda part: f"`{part}`"
    return lambda part: f'"{part}"'


def execute(run: Run) -> Outcome:
    """Run a foreach execution: the once-steps, then the items. Its Outcome's result is the
    summary (with the accumulator)."""
    foreach = run.spec.foreach
    assert foreach is not None
    iteration = _Iteration(run, foreach)
    once = run.spec.once_steps()
    resumed = bool(run.execution.get("iteration"))  # published only once items are stored
    if once and not resumed:
        failed, stuck = run.run_graph(once)
        if failed or stuck or run.stop_reason is not None:
            return run.outcome(failed, stuck)
    elif once:
        stored = {s["name"]: s for s in run.execution.get("steps") or []}
        for name in once:
            if name in stored:
                run._set_state(name, **stored[name])
    try:
        stored_items = iteration.items()
    except ItemsUnavailable as exc:
        run.logs.add(None, "system", f"foreach: {exc}", "error")
        return Outcome(
            Status.FAILED, None, ErrorCode.ITEMS_UNAVAILABLE, str(exc), run.step_states()
        )
    for step in iteration.steps:  # they run per item from now on
        run._set_state(step.name, status=StepStatus.RUNNING.value, startedAt=_stamp())
    stuck = iteration.loop(stored_items)
    summed = run.iteration or {}
    counts = {k: summed.get(k, 0) for k in ("succeeded", "failed", "timedOut")}
    stop = run.stop_reason
    if stop is not None:
        status = Status.CANCELLED if stop == Status.CANCELLED else Status.TIMED_OUT
    elif counts["failed"] or counts["timedOut"] or summed.get("remaining"):
        status = Status.FAILED
    else:
        status = Status.SUCCEEDED
    step_status = {
        Status.SUCCEEDED: StepStatus.SUCCEEDED,
        Status.FAILED: StepStatus.FAILED,
        Status.CANCELLED: StepStatus.CANCELLED,
        Status.TIMED_OUT: StepStatus.TIMED_OUT,
    }[status]
    for step in iteration.steps:
        run._set_state(step.name, status=step_status.value, finishedAt=_stamp())
    steps = run.step_states()
    if status == Status.SUCCEEDED:
        return Outcome(status, summed, None, None, steps, stuck)
    if status == Status.CANCELLED:
        return Outcome(status, None, ErrorCode.CANCELLED, "cancelled on request", steps, stuck)
    if status == Status.TIMED_OUT:
        message = f"job timed out after {run.spec.timeout_seconds}s"
        return Outcome(status, None, ErrorCode.TIMED_OUT, message, steps, stuck)
    parts = [f"{counts['failed']} failed"] if counts["failed"] else []
    parts += [f"{counts['timedOut']} timed out"] if counts["timedOut"] else []
    parts += [f"{summed['remaining']} did not run"] if summed.get("remaining") else []
    message = f"{', '.join(parts)} of {summed.get('total', 0)} items"
    return Outcome(status, summed, ErrorCode.ITEMS_FAILED, message, steps, stuck)
