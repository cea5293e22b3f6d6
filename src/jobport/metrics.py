"""Prometheus metrics: what the engine, the scheduler and authentication count, across processes.

Runs happen in other processes than the one that answers /metrics (the local executor's
workers, forked from its fork server; Celery's prefork children), so the counters and
histograms use prometheus-client's multiprocess mode: each process writes its values to
files in PROMETHEUS_MULTIPROC_DIR and a scrape adds them up. `prepare_process_dir()` sets that
directory for a server or worker before anything can count (its children inherit it).
Without it (an app in a test's process) the metrics stay in this process's own registry.

The mode is fixed when a metric object is made, so they are made on first use, never at
import, and prometheus_client is imported only inside functions: whichever module imports it
first, and whenever, `prepare_process_dir()` decides.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"

# Runs last from a second to hours; a queue wait is usually well under a second; a scheduler
# that keeps up fires within its poll interval (seconds).
_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)

_lock = threading.Lock()
_made: dict[str, Any] | None = None  # the metric objects, made by _metrics()
_own_registry: Any = None  # where they register: exposed directly only without multiprocess
_made_dir: str | None = None  # the directory prepare_process_dir() made, if it made one


def made_dir() -> str | None:
    """The directory prepare_process_dir() made in this process (None: the operator's)."""
    return _made_dir


def prepare_process_dir() -> str:
    """Count in multiprocess mode from now on, in this process and the ones it starts.

    Uses PROMETHEUS_MULTIPROC_DIR if the operator set it (then they empty it between runs,
    as prometheus-client asks); otherwise makes a fresh directory, removed when this process
    exits. Call it first thing in a command that serves metrics or runs work."""
    global _made, _made_dir
    with _lock:
        path = os.environ.get(ENV)
        if not path:
            path = tempfile.mkdtemp(prefix="jobport-metrics-")
            os.environ[ENV] = path
            owner = os.getpid()
            _made_dir = path

            def remove() -> None:
                if os.getpid() == owner:  # not in a forked child that happens to run atexit
                    shutil.rmtree(path, ignore_errors=True)

            atexit.register(remove)
            _remove_on_sigterm(remove)
        # Metrics made before this call count in this process only: make them again.
        _made = None
        return path


def _remove_on_sigterm(remove: Callable[[], None]) -> None:
    """SIGTERM ends a process without atexit (uvicorn, after its graceful shutdown, raises
    the signal again): remove the directory first, then die of it as before."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone handles it already; their exit runs atexit

    def on_sigterm(signum: int, frame: Any) -> None:
        remove()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def multiprocess() -> bool:
    """Whether metrics are counted across processes (PROMETHEUS_MULTIPROC_DIR is set)."""
    return bool(os.environ.get(ENV))


def _metrics() -> dict[str, Any]:
    global _made, _own_registry
    with _lock:
        if _made is not None:
            return _made
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        if multiprocess() and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client was imported before the directory was set: choose again.
            values.ValueClass = values.get_value_class()
        _own_registry = registry = CollectorRegistry()
        _made = {
            "started": Counter(
                "jobport_runs_started",
                "Runs a worker started, by project and job.",
                ["project", "job"],
                registry=registry,
            ),
            "finished": Counter(
                "jobport_runs_finished",
                "Runs that ended, by project, job and final status.",
                ["project", "job", "status"],
                registry=registry,
            ),
            "duration": Histogram(
                "jobport_run_duration_seconds",
                "How long runs ran, from start to end, by project and job.",
                ["project", "job"],
                buckets=_DURATION_BUCKETS,
                registry=registry,
            ),
            "queue_wait": Histogram(
                "jobport_run_queue_wait_seconds",
                "How long runs waited from due (created, or notBefore) to started.",
                buckets=_WAIT_BUCKETS,
                registry=registry,
            ),
            "auth_failures": Counter(
                "jobport_auth_failures",
                "Refused credentials and calls, by reason (the error code the caller got).",
                ["reason"],
                registry=registry,
            ),
            "fires": Counter(
                "jobport_scheduler_fires",
                "Schedule fires recorded (by the scheduler or a trigger; not backfills, "
                "not missed fires).",
                registry=registry,
            ),
            "pruned": Counter(
                "jobport_pruned",
                "What retention removed: runs, log lines, foreach items.",
                ["what"],
                registry=registry,
            ),
            "lag": Histogram(
                "jobport_scheduler_lag_seconds",
                "How late a fire was recorded after its due time.",
                buckets=_LAG_BUCKETS,
                registry=registry,
            ),
        }
        return _made


def run_started(project: str, job: str, queue_wait_seconds: float) -> None:
    """A worker started a run (after its claim)."""
    made = _metrics()
    made["started"].labels(project, job).inc()
    made["queue_wait"].observe(max(0.0, queue_wait_seconds))


def run_finished(project: str, job: str, status: str, duration_seconds: float | None) -> None:
    """A run ended with `status`; `duration_seconds` None if it never started."""
    made = _metrics()
    made["finished"].labels(project, job, status).inc()
    if duration_seconds is not None:
        made["duration"].labels(project, job).observe(max(0.0, duration_seconds))


def auth_failure(reason: str) -> None:
    """A credential or a call was refused; `reason` is the error code the caller got."""
    _metrics()["auth_failures"].labels(reason).inc()


def schedule_fired(lag_seconds: float) -> None:
    """A fire was recorded `lag_seconds` after its due time."""
    made = _metrics()
    made["fires"].inc()
    made["lag"].observe(max(0.0, lag_seconds))


def pruned(*, runs: int, log_lines: int, items: int) -> None:
    """A retention pass removed these (runs with their lines and items, or lines alone)."""
    counter = _metrics()["pruned"]
    for what, n in (("runs", runs), ("log_lines", log_lines), ("items", items)):
        if n:
            counter.labels(what).inc(n)


def _registry(extra_collectors: Iterable[Any]) -> Any:
    """A registry of this process's (or every process's) metrics and the extra collectors."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    # Made here too, so that the unlabelled metrics show (at zero) before anything counted.
    _metrics()
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward())
    for collector in extra_collectors:
        registry.register(collector)
    return registry


class _Forward:
    """A collector of this process's own metrics (the fallback without multiprocess)."""

    def collect(self) -> Iterable[Any]:
        _metrics()
        return _own_registry.collect()  # type: ignore[no-any-return]


def render(extra_collectors: Iterable[Any] = ()) -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_registry(extra_collectors)), CONTENT_TYPE_LATEST


def parse_bind(bind: str) -> tuple[str, int]:
    """("host", port) of "host:port" ("[::1]:9100" for IPv6); ValueError if it is not one."""
    host, sep, port = bind.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{bind!r} is not host:port (e.g. 127.0.0.1:9100)")
    return host, int(port)


def serve(bind: str, extra_collectors: Iterable[Any] = ()) -> Callable[[], None]:
    """Serve the metrics without authentication on "host:port" from a daemon thread (for a
    scraper on a private network). Returns the function that stops it. ValueError for a
    malformed bind, OSError if the address cannot be bound."""
    from prometheus_client import start_http_server

    host, port = parse_bind(bind)
    server, thread = start_http_server(port, addr=host, registry=_registry(extra_collectors))

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
