"""`jobport worker`: run jobs from Celery queues on this machine (JOBPORT_EXECUTOR=celery)."""

from __future__ import annotations

import re

import typer

from jobport.cli._shared import fail
from jobport.domain.jobs import QUEUE_PATTERN

_QUEUE = re.compile(QUEUE_PATTERN)


def worker_command(
    queues: str = typer.Option(
        "default", "--queues", "-Q", help="Queues to take runs from, comma separated."
    ),
    concurrency: int = typer.Option(
        None, "--concurrency", "-c", min=1, help="Runs at once (default: JOBPORT_WORKERS)."
    ),
    metrics_bind: str = typer.Option(
        None,
        help="host:port to serve this worker's /metrics on, without authentication "
        "(default: JOBPORT_METRICS_BIND; empty: none).",
    ),
    pool: str = typer.Option(
        "auto",
        help="How runs are run: 'solo' in this process, one at a time; 'prefork' in pool "
        "processes this one starts again if they die; 'auto': solo for --concurrency 1, "
        "prefork for more.",
    ),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Run jobs from the broker's queues here, on the shared database.

    Needs JOBPORT_BROKER_URL (redis://... or amqp://...) and the database, encryption key
    and settings of the API nodes. Start as many as you like, on any machine: each run is
    claimed once in the database. SIGTERM lets the runs in progress finish; a second
    SIGTERM stops at once (those runs end worker_lost, or are retried).
    """
    from jobport import metrics
    from jobport.cli.server import _check_metrics_bind, _configure_logging
    from jobport.errors import JobportError
    from jobport.settings import Settings

    # Before anything counts: the pool processes (forked later) count into this directory.
    metrics.prepare_process_dir()

    names = [q.strip() for q in queues.split(",") if q.strip()]
    bad = [q for q in names if not _QUEUE.match(q)]
    if not names or bad:
        fail(f"jobport: --queues: {bad or queues!r} is not a list of queue names")
    settings = Settings()
    from jobport import boot

    try:
        boot.worker_pool(pool, concurrency or settings.workers)
    except ValueError as exc:
        fail(f"jobport: --pool: {exc}")
    if not settings.broker_url:
        fail("jobport: JOBPORT_BROKER_URL is not set (redis://host:6379/0 or amqp://...)")
    bind = settings.metrics_bind if metrics_bind is None else metrics_bind
    _check_metrics_bind(bind)
    _configure_logging(log_level)
    try:
        boot.preflight(settings.model_copy(update={"executor": "celery"}))
    except JobportError as exc:
        fail(f"jobport: {exc.message}")
    if bind:  # runs started and finished here, their durations and queue waits
        try:
            metrics.serve(bind)
        except OSError as exc:
            fail(f"jobport: metrics bind {bind}: {exc}")
    code = boot.run_worker(
        settings, names, concurrency or settings.workers, loglevel=log_level.upper(), pool=pool
    )
    raise typer.Exit(code)
