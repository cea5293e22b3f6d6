"""The Celery executor: runs go out as messages on Celery queues; `jobport worker` processes
on any machine that reaches the database and the broker run them.

Celery is the transport only; the database stays the truth:
- a message carries an execution id and nothing else. The worker claims the run with the
  same compare-and-set as the local pool (`engine/worker.claim`), so a duplicated message
  costs one failed claim and never a second run;
- a lost message (a broker restarted without its queues, a worker killed holding it) loses
  nothing: the run stays `queued`, and the sweep of every API node hands it out again once
  it has waited `republish_seconds` (`engine/dispatcher.py`);
- a message is acknowledged when its task starts, not when it ends: a run may take hours,
  longer than a broker waits for an acknowledgement (RabbitMQ's consumer timeout, Redis's
  visibility timeout), and once it is claimed the database knows who holds it;
- cancel and timeouts need no message: the worker's heartbeat reads `cancelling` and kills
  the run's process groups; a run's timeout is kept by the worker that runs it. Celery's
  `revoke(terminate=True)` is never used (it signals whatever the pool process runs then);
- a worker that dies: its runs stop beating and the sweep ends them `worker_lost` (or
  retries them), after killing what they left on that host (the reaper first, at once).

On the API node, `CeleryExecutor` publishes from a thread, in batches, each id to its job's
`queue` (looked up in the batch's one read, which also drops runs no longer queued). In the
worker, the process that runs runs (each prefork child, or the worker itself with the solo
pool: pool_for()) hosts an `engine.worker.Worker` (heartbeat, reaper, database) and
publishes what a run's end makes due: its retry, the runs its `maxConcurrent` held back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import os
import queue
import shutil
import sys
import threading
import time
from typing import Any

from jobport.domain.clock import utcnow
from jobport.engine.executors import EventSink
from jobport.engine.steps import STEP_MODULES
from jobport.settings import Settings
from jobport.store import executions as execution_store
from jobport.store.db import Database

log = logging.getLogger("jobport.executor")

TASK = "jobport.run"
# A later hand-out (a retry's delay, a run not yet due) rides the message as an ETA only
# when it is this close: a worker holds ETA messages unacknowledged until then. Later
# ones are handed out by the sweep once due.
MAX_ETA_SECONDS = 600.0
_BATCH = 500
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def make_app(settings: Settings) -> Any:
    """The Celery app of this deployment: the broker, JSON only, no results, early acks."""
    from celery import Celery

    app = Celery("jobport", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue="default",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=4.0,
        task_create_missing_queues=True,
    )
    if settings.broker_url.startswith(("redis://", "rediss://", "sentinel://")):
        # kombu's Redis transport emulates acknowledgements by keeping each delivered
        # message in a hash until it is acked, and puts back what stays there past a
        # visibility timeout (an hour). Ours are acked when their task starts, and a
        # message lost before that is handed out again by the sweep (module docstring),
        # so the emulation guards nothing here; it cost two Redis round trips per message
        # and about a third of a `jobport worker` parent's CPU (bench/README.md).
        app.conf.broker_transport_options = {"ack_emulation": False}
    app.task(name=TASK, bind=True, ignore_result=True)(_run_task)
    return app


class Publisher:
    """Sends execution ids to their jobs' queues; only those still queued."""

    def __init__(self, app: Any, db: Database) -> None:
        self.app = app
        self.db = db

    def publish(self, execution_ids: list[str], at: dt.datetime | None = None) -> int:
        countdown = 0.0
        if at is not None:
            countdown = (at - utcnow()).total_seconds()
            if countdown > MAX_ETA_SECONDS:
                return 0  # the sweep hands it out when it is due
        with self.db.read() as conn:
            queues = execution_store.queues_of_queued(conn, execution_ids)
        if not queues:
            return 0
        # The id is the message's one argument; Celery would otherwise repr it for logs.
        options: dict[str, Any] = {"argsrepr": "", "kwargsrepr": ""}
        if countdown > 0:
            options["countdown"] = countdown
        # One batch: on Redis, kombu sends its LPUSHes in one pipeline, one round trip
        # instead of one per run (other transports publish each message as it comes,
        # each retried by kombu on a lost connection; in a batch there is nothing to
        # retry before the flush). A batch that fails is sent again whole (a message
        # sent twice costs one failed claim); after the last try the caller logs it,
        # and the sweep hands them out.
        for pause in (0.2, 0.7, None):
            try:
                with self.app.producer_or_acquire() as producer, producer.batch():
                    retry = not producer.supports_batch_publish
                    for execution_id, queue_name in queues.items():
                        self.app.send_task(
                            TASK,
                            args=[execution_id],
                            queue=queue_name,
                            producer=producer,
                            retry=retry,
                            retry_policy=_RETRY_POLICY,
                            **options,
                        )
                break
            except Exception:
                if pause is None:
                    raise
                time.sleep(pause)
        return len(queues)


class CeleryExecutor:
    """The API node's side: hands execution ids to the broker from a publishing thread."""

    # No events come back: wakes come through the database (store/notify.py), and the
    # dispatcher's sweep re-publishes what nobody claimed.
    reports_back = False

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.app = make_app(settings)
        self.publisher = Publisher(self.app, db)
        self._pending: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self, on_event: EventSink) -> None:
        self._thread = threading.Thread(target=self._pump, name="celery-publish", daemon=True)
        self._thread.start()

    def attach(self, loop: Any, handle: EventSink) -> None:
        """Nothing comes back from Celery workers to read."""

    def detach(self) -> None:
        pass

    def submit(self, execution_id: str) -> None:
        self._pending.put(execution_id)

    def check(self, timeout: float = 2.0) -> None:
        """Raise if the broker does not answer within `timeout` s now (for /readyz): its own
        connection, with every socket operation bounded (a broker that accepts and then says
        nothing must not hang the probe)."""
        from kombu import Connection

        if self.settings.broker_url.startswith(("redis://", "rediss://")):
            options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        else:
            options = {"read_timeout": timeout, "write_timeout": timeout}
        with Connection(
            self.settings.broker_url, connect_timeout=timeout, transport_options=options
        ) as conn:
            conn.connect()
            client = getattr(conn.default_channel, "client", None)
            if client is not None and hasattr(client, "ping"):  # Redis
                client.ping()

    def stop(self, timeout: float = 5.0) -> list[str]:
        self._pending.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        return []

    def _pump(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _BATCH:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                self.publisher.publish(batch)
            except Exception as exc:  # the broker is away: the sweep hands them out later
                log.warning(
                    "could not hand %d run(s) to the broker (%s); they stay queued and are "
                    "handed out again within %gs",
                    len(batch),
                    exc,
                    self.settings.republish_seconds,
                )
            if stop:
                return


# -- the worker's side: `jobport worker` ------------------------------------------------


POOLS = ("auto", "prefork", "solo")


def pool_for(requested: str, concurrency: int) -> str:
    """The Celery pool `jobport worker` runs: `auto` is solo for one run at a time,
    prefork for more.

    Solo runs each run in the worker's own process: no pool process between the broker
    and the run, no hand-off through a pipe (on 2 cores, phase b of postgres+celery went
    from 483-490 to 503-526 runs/s: bench/README.md). What it gives up: a step that
    crashes the process (a segfault in an extension) ends the worker, for its supervisor
    to restart, where prefork would start another pool process. A Python step that
    ignores its stop makes a solo worker start again in place (same pid)."""
    if requested not in POOLS:
        raise ValueError(f"pool {requested!r} is none of {', '.join(POOLS)}")
    if requested == "auto":
        return "solo" if concurrency == 1 else "prefork"
    if requested == "solo" and concurrency != 1:
        raise ValueError("the solo pool runs one run at a time: use --concurrency 1")
    return requested


class _Child:
    """What the process that runs runs holds: a prefork child of `jobport worker`, or the
    worker itself with the solo pool (set up in worker_process_init)."""

    settings: Settings | None = None
    app: Any = None
    stack: contextlib.ExitStack | None = None
    worker: Any = None
    publisher: Publisher | None = None
    solo = False
    # For a solo worker's restart in place: how it was started.
    environ: dict[str, str] = {}
    cwd = ""


def _run_task(task: Any, execution_id: str) -> None:
    """The Celery task: claim and run one execution in this pool process."""
    worker = _Child.worker
    if worker is None:  # not a jobport worker process (a misrouted message): leave it
        raise RuntimeError("this Celery worker does not host a jobport worker")
    got, done, must_exit = worker.run_one(execution_id)
    queue_name = (task.request.delivery_info or {}).get("routing_key") or "default"
    try:
        _follow_up(execution_id, got, done, queue_name)
    except Exception as exc:  # the sweep hands them out instead
        log.warning("could not hand out what %s made due: %s", execution_id, exc)
    if must_exit:
        # A Python step ignored the stop, and only the end of its process ends its thread.
        if _Child.solo:
            _restart_in_place()
        os._exit(3)  # a pool process: the pool starts another


def _restart_in_place() -> None:
    """A solo worker execs itself again, as it was started: same pid (a supervisor sees
    nothing), every thread gone. What closes on exec tells the rest: the reaper sees its
    pipe end and kills what the stuck run left; the broker forgets the connection (a
    message taken and not yet run is handed out again by the sweep)."""
    from jobport import metrics

    log.warning("a step ignored its stop: this worker starts again in place")
    environ = dict(_Child.environ)
    made = metrics.made_dir()
    if made is not None:  # the new process makes its own (and removes it at its exit)
        shutil.rmtree(made, ignore_errors=True)
        environ.pop(metrics.ENV, None)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    with contextlib.suppress(OSError):
        os.chdir(_Child.cwd)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)


def _follow_up(execution_id: str, got: Any, done: Any, queue_name: str) -> None:
    publisher = _Child.publisher
    assert publisher is not None
    if got.execution is None:
        if got.reason == "not_due" and got.not_before is not None:
            publisher.publish([execution_id], at=got.not_before)
        return
    if done is None:
        return
    if done.retry_id and done.retry_at:
        publisher.publish([done.retry_id], at=done.retry_at)
    if done.job_id and done.limited:
        with publisher.db.read() as conn:
            waiting = execution_store.queued_for_job(conn, done.job_id, utcnow(), limit=10)
        if waiting:
            publisher.publish(waiting)


def _child_start(**_: Any) -> None:
    from jobport.engine.executors.local import die_with_parent
    from jobport.engine.worker import hosted

    if not _Child.solo:  # a kill -9 of `jobport worker` ends its pool too (and the reapers act)
        die_with_parent()
    settings = _Child.settings
    assert settings is not None
    stack = contextlib.ExitStack()
    worker = stack.enter_context(hosted(settings))
    _Child.stack, _Child.worker = stack, worker
    _Child.publisher = Publisher(_Child.app, worker.db)


def _child_stop(**_: Any) -> None:
    if _Child.stack is not None:
        _Child.stack.close()
        _Child.stack = _Child.worker = None


def run_worker(
    settings: Settings,
    queues: list[str],
    concurrency: int,
    *,
    loglevel: str = "INFO",
    pool: str = "auto",
) -> int:
    """`jobport worker`: consume `queues`, `concurrency` runs at a time, until stopped
    (`pool`: pool_for()).

    SIGTERM finishes the runs in progress first (Celery's warm shutdown); a second one, or
    SIGQUIT, stops at once, and those runs end `worker_lost` (or are retried) by the sweep.
    """
    from celery import signals

    chosen = pool_for(pool, concurrency)
    _Child.solo = chosen == "solo"
    _Child.environ, _Child.cwd = dict(os.environ), os.getcwd()

    db = Database(settings.database_url, pool=False)
    try:
        db.upgrade()
    finally:
        db.dispose()  # nothing open in this process when the pool forks
    for module in ("jobport.engine.worker", *STEP_MODULES):  # imported once, before the
        importlib.import_module(module)  # pool forks, rather than in each child's first run
    app = make_app(settings)
    if _Child.solo:
        # The process is busy with a run while it runs one: it cannot answer RabbitMQ's
        # heartbeats then, and RabbitMQ would close the connection of a long run. TCP
        # keepalive (py-amqp's default) finds a dead connection instead.
        app.conf.broker_heartbeat = 0
        # Its steps' print() goes to their logs (engine/capture.py); Celery would put its
        # own stdout over that once the pool has started.
        app.conf.worker_redirect_stdouts = False
    _Child.settings, _Child.app = settings, app
    signals.worker_process_init.connect(_child_start, weak=False)  # solo sends it too
    if _Child.solo:
        signals.worker_shutdown.connect(_child_stop, weak=False)
    else:
        signals.worker_process_shutdown.connect(_child_stop, weak=False)
    worker = app.Worker(
        queues=queues,
        concurrency=concurrency,
        pool=chosen,
        loglevel=loglevel,
        hostname=f"jobport-{os.getpid()}@{os.uname().nodename}",
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    worker.start()
    return int(worker.exitcode or 0)
