"""The Celery + Redis no-op baseline that bench/compare.py measures beside jobport.

One `celery worker` process with the prefork pool at concurrency `workers` (default 2:
two pool processes run tasks, as jobport's local pool of 2 worker processes does; the
worker's main process only consumes and hands tasks to them), on Redis database 12 at
127.0.0.1:6379, on a queue of its own. Celery's defaults otherwise (prefetch multiplier 4,
acks early), and no result backend (`task_ignore_result`): nothing is written per task
except what the measurement needs, which is one Redis command per task, from the task:

  throughput   `runs` `count` tasks published from this process one after the other;
               each task INCRs a counter and the one that brings it to `runs` RPUSHes
               its wall clock on a done list, which this process BLPOPs.
               tasks/s = runs / (that clock - first publish), as jobport's phase b.
  round trip   `requests` times, after `warmup`: publish a `signal` task whose only work
               is RPUSH on a key of its own, and BLPOP that key: the time from
               `apply_async` to the BLPOP's answer, as jobport's phase a (a POST with
               ?wait=30, answered when the run ended).

The module is also the worker's app (`celery -A celery_baseline worker`, started with this
folder as its working directory).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from celery import Celery

REDIS_URL = os.environ.get("BENCH_BASELINE_REDIS", "redis://127.0.0.1:6379/12")

app = Celery("baseline", broker=REDIS_URL, set_as_current=False)
app.conf.update(
    task_ignore_result=True,
    result_backend=None,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_redis: Any = None


def _client() -> Any:
    """One Redis connection per pool process, made on its first task."""
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(REDIS_URL)
    return _redis


@app.task(name="baseline.count")
def count(key: str, total: int) -> None:
    if _client().incr(key) == total:
        _client().rpush(f"{key}:done", repr(time.time()))


@app.task(name="baseline.signal")
def signal(key: str) -> None:
    _client().rpush(key, b"1")


class Baseline:
    """The worker process and the client side of the two measurements."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.queue = f"baseline-{secrets.token_hex(4)}"
        self.node = f"{self.queue}@{os.uname().nodename}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/{self.queue}.log")

    def describe(self) -> str:
        return (
            f"Celery {app_version()} + Redis, 1 worker x prefork concurrency {self.workers}, "
            "no result backend"
        )

    def start(self, timeout: float = 60.0) -> None:
        from run import _die_with_parent

        cmd = [
            sys.executable, "-m", "celery", "-A", "celery_baseline", "worker",
            "--pool", "prefork", "--concurrency", str(self.workers), "--queues", self.queue,
            "--hostname", self.node, "--loglevel", "warning",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=Path(__file__).resolve().parent,
                env={**os.environ, "BENCH_BASELINE_REDIS": REDIS_URL},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"celery worker exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker not ready after {timeout:g}s:\n{self.tail()}")
            if app.control.ping(destination=[self.node], timeout=1.0):
                return

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def throughput(self, runs: int, budget: float) -> dict[str, Any]:
        from run import cpu_percent

        r = _client()
        key = f"{self.queue}:count"
        before = self._cpu()
        t_first = time.time()
        for _ in range(runs):
            count.apply_async((key, runs), queue=self.queue)
        t_sent = time.time()
        got = r.blpop([f"{key}:done"], timeout=max(1, int(budget - (t_sent - t_first))))
        seen = time.time()
        done = int(r.get(key) or 0)
        last = float(got[1]) if got else seen
        span = last - t_first
        return {
            "runs": runs,
            "publish_s": t_sent - t_first,
            "publish_per_s": runs / (t_sent - t_first),
            "span_s": span,
            "done": done,
            "runs_per_s": done / span if got and span > 0 else float("nan"),
            "complete": bool(got),
            "cpu_percent": cpu_percent(before, self._cpu(), seen - t_first),
        }

    def round_trip(self, n: int, warmup: int) -> dict[str, Any]:
        from run import cpu_percent, percentile

        r = _client()
        latencies: list[float] = []
        lost = 0
        for i in range(warmup + n):
            if i == warmup:
                before, t0 = self._cpu(), time.time()
            key = f"{self.queue}:sync:{i}"
            start = time.perf_counter()
            signal.apply_async((key,), queue=self.queue)
            got = r.blpop([key], timeout=30)
            ms = (time.perf_counter() - start) * 1000
            if got is None:
                lost += 1
            elif i >= warmup:
                latencies.append(ms)
        wall = time.time() - t0
        latencies.sort()
        return {
            "requests": n,
            "ok": len(latencies),
            "lost": lost,
            "median_ms": percentile(latencies, 50),
            "p90_ms": percentile(latencies, 90),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "cpu_percent": cpu_percent(before, self._cpu(), wall),
        }

    def _cpu(self) -> dict[str, float]:
        from run import _services_cpu, _tree_cpu

        return {
            "client": time.process_time(),
            "workers": _tree_cpu(self.pids()),
            **_services_cpu(None, "redis-server"),
        }

    def stop(self) -> None:
        """Warm shutdown, then SIGKILL to the worker's group; the queue's keys go."""
        import signal as signals

        from run import _kill_group

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signals.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        _kill_group(self.proc)
        with contextlib.suppress(Exception):
            r = _client()
            for key in r.scan_iter(match=f"*{self.queue}*"):
                r.delete(key)
        with contextlib.suppress(OSError):
            self.log.unlink()


def app_version() -> str:
    import celery

    return celery.__version__


def measure(
    workers: int = 2, runs: int = 2000, requests: int = 500, warmup: int = 20
) -> dict[str, Any]:
    """One baseline run: start the worker, the round trips, the throughput, stop."""
    base = Baseline(workers)
    res: dict[str, Any] = {"setup": "celery+redis", "description": base.describe()}
    try:
        base.start()
        res["sync"] = base.round_trip(requests, warmup)
        res["throughput"] = base.throughput(runs, 55.0)
    finally:
        base.stop()
    return res
