"""The metrics read from the database at scrape time (queue depth, runs running), and the
unauthenticated metrics address (JOBPORT_METRICS_BIND)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from jobport import metrics
from jobport.domain.clock import utcnow
from jobport.errors import JobportError
from jobport.services.runtime import Runtime
from jobport.store import stats

log = logging.getLogger("jobport.metrics")


class DatabaseCollector:
    """Gauges counted in the database when scraped, so every node reports the same truth:
    `jobport_queue_depth{queue}` (queued runs that are due) and `jobport_runs_running{queue}`.

    The `default` queue is always reported; a database that does not answer leaves both
    gauges out of that scrape (and says so in the log) rather than failing it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            with self.rt.db.read() as conn:
                counts = stats.queue_counts(conn, utcnow())
        except Exception as exc:
            log.warning("metrics: the queue counts could not be read: %s", exc)
            return
        counts.setdefault(stats.DEFAULT_QUEUE, (0, 0))
        depth = GaugeMetricFamily(
            "jobport_queue_depth", "Queued runs that are due, by queue.", labels=["queue"]
        )
        running = GaugeMetricFamily(
            "jobport_runs_running", "Runs running (or being cancelled), by queue.", labels=["queue"]
        )
        for queue, (waiting, busy) in sorted(counts.items()):
            depth.add_metric([queue], waiting)
            running.add_metric([queue], busy)
        yield depth
        yield running


def render(rt: Runtime) -> tuple[bytes, str]:
    """Every metric, in Prometheus's text format, and its content type (GET /metrics)."""
    return metrics.render([DatabaseCollector(rt)])


def start_metrics_bind(rt: Runtime) -> Callable[[], None] | None:
    """Serve the metrics without authentication on JOBPORT_METRICS_BIND, if set; returns the
    function that stops it (None if unset). JobportError `bad_setting` if it cannot be."""
    bind = rt.settings.metrics_bind
    if not bind:
        return None
    try:
        return metrics.serve(bind, [DatabaseCollector(rt)])
    except (ValueError, OSError) as exc:
        raise JobportError(f"JOBPORT_METRICS_BIND: {exc}", code="bad_setting") from None
