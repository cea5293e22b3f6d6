"""jobport benchmark: synchronous round trip, end-to-end throughput, accepted requests/s.

With no arguments it measures three setups one after the other: for each it starts a real
server (`jobport serve --demo`) on a free loopback port with a fresh database, and its
workers, measures the demo project's `noop` job (one no-op Python step), stops them all,
and at the end prints one table, a column per setup, with the target and PASS/MISS per row.
The setups (`--setups`): sqlite+local (a SQLite file, the local pool), postgres+local (a new
PostgreSQL database, the local pool), postgres+celery (the same with JOBPORT_EXECUTOR=celery
and `--workers` `jobport worker` processes on Redis or RabbitMQ, `--broker`). A setup whose
service is absent is reported as skipped. The phases:

  a) sync round trip   N sequential `POST .../execute?wait=30` on one keep-alive connection
  b) throughput        M `POST .../execute` (202) with concurrency, until all have ended
  c) accepted req/s    K `POST .../execute` with concurrency; the runs drain afterwards
  d) listing           `GET .../executions`: first page, filtered by status and by job, and
                       20 pages by cursor (only with --stored or --only d)

`--stored 0,100000,1000000` measures sqlite+local (and postgres+local) once per size, each on
a database already holding that many ended runs with 20 log lines each (bench/stored.py),
and prints the curve: a column per size.

The server's resident memory (VmRSS) is read after each phase, and the sum over the
processes below it (the workers). `--soak N` then submits N more no-op runs in chunks and
samples it every `--soak-sample` runs (10,000), against 150 MB. `--profile DIR` records the
server and its workers with py-spy during each phase (bench/profiles.py) and prints where
the CPU went. The header's `calibration` is the time of a fixed pure-Python loop: the
machine's speed that day.

Every request carries an API key (`Authorization: Bearer jpk_...`) of an Administrator, as
a real client's would: the bench measures authentication too. Traffic goes to 127.0.0.1
only. Each setup is bounded by --timeout; its processes are always stopped at the end.
See bench/README.md for what the rows mean and for results.

The default load generator is a minimal HTTP/1.1 keep-alive client on raw asyncio
streams (on uvloop when available): on a 2-core machine shared by client, server and
workers, an httpx2 client costs several times more CPU per request and would measure
itself. `--client httpx2` uses httpx2.AsyncClient instead, for comparison. Each phase
also reports the CPU used by the client, the server process and the worker processes
(100% = one core), so a saturated load generator shows up in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import profiles

PROJECT = "demo"
JOB = "noop"
EXECUTE = f"/api/v1/projects/{PROJECT}/jobs/{JOB}/execute"
LIST = f"/api/v1/projects/{PROJECT}/executions"
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}
LOOPBACK = {"127.0.0.1", "localhost"}

SYNC_LEGS = (
    "request -> row created",
    "created -> claimed by a worker",
    "claimed -> step started",
    "step ran",
    "step ended -> execution finished",
    "finished -> response received",
)

# Time budgets (seconds) that keep the whole run bounded even on a slow server. Phases b and
# c spend at most SUBMIT_SHARE of theirs sending, the rest waiting for the runs to end.
BUDGET = {"a": 30.0, "b": 55.0, "c": 50.0, "d": 60.0}
SUBMIT_SHARE = 0.6

# --soak: runs go out in chunks of SOAK_CHUNK, each drained before the next, so that never
# more than a chunk is queued; RSS is sampled every --soak-sample runs. The soak may take
# SOAK_BASE_S plus N / SOAK_FLOOR_RUNS_PER_S seconds: 100,000 runs may take 35 min, more than
# twice the ~13 min they take at ~130 runs/s. Target: the server under SOAK_TARGET_MB at the end.
SOAK_CHUNK = 2000
SOAK_BASE_S = 60.0
SOAK_FLOOR_RUNS_PER_S = 50.0
SOAK_TARGET_MB = 150.0

# The calibration: a fixed pure-Python loop (never change CALIBRATION_N: figures of
# different days are comparable through it), best of CALIBRATION_ROUNDS.
CALIBRATION_N = 1_500_000
CALIBRATION_ROUNDS = 5

# Issue 15's targets: a, b and c on SQLite (sqlite+local, or a server given with --url);
# on PostgreSQL, with the local pool or Celery, b alone (POSTGRES_RUNS_PER_S).
TARGETS = {
    "sync_median_ms": 5.0,
    "sync_p99_ms": 20.0,
    "runs_per_s": 1000.0,
    "accepted_per_s": 2000.0,
    "list_p99_ms": 50.0,
}
POSTGRES_RUNS_PER_S = 500.0

# Phase d's requests: a label and the query of `GET .../executions`. The status filters
# pick 5% of the stored runs (failed), 0.1% (timed_out; bench/stored.py) and none (the
# active ones: nothing runs during d), which reads every run of the project.
LISTINGS = {
    "first": ("first page", "limit=50"),
    "failed": ("status=failed", "status=failed&limit=50"),
    "rare": ("status=timed_out", "status=timed_out&limit=50"),
    "active": ("status=queued,running", "status=queued,running&limit=50"),
    "job": (f"job={JOB}", f"job={JOB}&limit=50"),
    "cursor": ("next 20 pages by cursor", "limit=50"),
}
CURSOR_PAGES = 20


class BenchError(Exception):
    pass


# -- HTTP clients -------------------------------------------------------------------------


class TransportError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """One HTTP/1.1 keep-alive connection on asyncio streams; requests one at a time."""

    def __init__(self, host: str, port: int, key: str | None = None) -> None:
        self.host = host
        self.port = port
        self._auth = f"Authorization: Bearer {key}\r\n" if key else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._cache: dict[tuple[str, str], bytes] = {}

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _head(self, method: str, path: str) -> bytes:
        key = (method, path)
        head = self._cache.get(key)
        if head is None:
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._auth}"
                "Content-Length: 0\r\nAccept: application/json\r\n\r\n"
            ).encode()
            self._cache[key] = head
        return head

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        try:
            if self._writer is None:
                await self._connect()
            assert self._reader is not None and self._writer is not None
            if body is None:
                self._writer.write(self._head(method, path))
            else:  # a JSON body (set-up requests only; the measured ones send none)
                self._writer.write(
                    f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"{self._auth}Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nAccept: application/json\r\n\r\n".encode()
                    + body
                )
            raw = await self._reader.readuntil(b"\r\n\r\n")
            lines = raw[:-4].decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await self._reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                body = await self._reader.read()
                await self.close()
            if headers.get("connection", "").lower() == "close":
                await self.close()
            return Response(status, headers, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            await self.close()
            raise TransportError(f"{type(e).__name__}: {e}") from None

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Httpx2Connection:
    """The same interface over a shared httpx2.AsyncClient."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def request(self, method: str, path: str) -> Response:
        import httpx2

        try:
            r = await self.client.request(method, path)
        except httpx2.HTTPError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from None
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    async def close(self) -> None:
        pass


class Clients:
    """Hands out connections of the chosen kind."""

    def __init__(
        self, kind: str, host: str, port: int, concurrency: int, key: str | None = None
    ) -> None:
        self.kind = kind
        self.host = host
        self.port = port
        self.key = key
        self._httpx: Any = None
        self._concurrency = concurrency
        self._opened: list[Any] = []

    def connection(self) -> RawConnection | Httpx2Connection:
        if self.kind == "httpx2":
            if self._httpx is None:
                import httpx2

                limits = httpx2.Limits(
                    max_connections=self._concurrency + 2,
                    max_keepalive_connections=self._concurrency + 2,
                )
                self._httpx = httpx2.AsyncClient(
                    base_url=f"http://{self.host}:{self.port}",
                    limits=limits,
                    timeout=httpx2.Timeout(60.0),
                    trust_env=False,
                    headers={"Authorization": f"Bearer {self.key}"} if self.key else {},
                )
            return Httpx2Connection(self._httpx)
        conn = RawConnection(self.host, self.port, self.key)
        self._opened.append(conn)
        return conn

    async def close(self) -> None:
        for conn in self._opened:
            await conn.close()
        self._opened.clear()
        if self._httpx is not None:
            await self._httpx.aclose()
            self._httpx = None


# -- CPU accounting -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
    return out


@dataclass
class Probe:
    """The processes whose CPU a phase reports.

    server: the `jobport serve` process; workers: its descendants (the local pool) plus the
    `jobport worker` processes and theirs (Celery's pool); postgres: the PostgreSQL backends
    connected to the bench's own database; broker: the Redis or RabbitMQ server, which is
    shared with whoever else uses it on this machine.
    """

    server_pid: int | None
    worker_pids: list[int] = field(default_factory=list)
    database: str | None = None
    broker: str | None = None  # the broker's process name: redis-server or beam.smp


def _tree_cpu(roots: list[int]) -> float:
    total = 0.0
    stack = list(roots)
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += _proc_cpu(pid)
            stack.extend(_children(pid))
    return total


def _services_cpu(database: str | None, broker: str | None) -> dict[str, float]:
    """CPU of the backends of `database` (by their process title) and of the broker."""
    out = {"postgres": 0.0} if database else {}
    if broker:
        out["broker"] = 0.0
    title = f" {database} ".encode() if database else None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            if title is not None:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                if cmdline.startswith(b"postgres: ") and title in cmdline:
                    out["postgres"] += _proc_cpu(int(entry))
                    continue
            if broker:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == broker:
                        out["broker"] += _proc_cpu(int(entry))
    return out


def cpu_snapshot(probe: int | Probe | None) -> dict[str, float]:
    """Seconds of CPU so far: this client, the server process, the workers and (when the
    probe names them) the database's backends and the broker. An int is a server pid."""
    if isinstance(probe, int):
        probe = Probe(probe)
    snap = {"client": time.process_time()}
    if probe is None or probe.server_pid is None:
        return snap
    try:
        snap["server"] = _proc_cpu(probe.server_pid)
    except OSError:
        return snap
    snap["workers"] = _tree_cpu(_children(probe.server_pid) + probe.worker_pids)
    snap.update(_services_cpu(probe.database, probe.broker))
    return snap


def cpu_percent(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, int]:
    # Workers replaced during the phase would make this negative; clamp.
    return {
        k: max(0, round(100 * (after[k] - before[k]) / wall))
        for k in after
        if k in before and wall > 0
    }


# -- memory -------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MB (MiB: kB / 1024), from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no VmRSS for {pid}")  # a zombie


def _descendants(roots: list[int]) -> list[int]:
    out: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(_children(pid))
    return out


def memory_snapshot(probe: Probe | None) -> dict[str, Any] | None:
    """The server's VmRSS, and the sum over the worker processes: everything below the
    server (the local pool's fork server, workers and resource tracker) and celery's
    `jobport worker` processes with theirs. Pages shared between processes count in each."""
    if probe is None or probe.server_pid is None:
        return None
    try:
        server = rss_mb(probe.server_pid)
    except OSError:
        return None
    workers, count = 0.0, 0
    for pid in _descendants(_children(probe.server_pid) + probe.worker_pids):
        with contextlib.suppress(OSError, ValueError):
            workers += rss_mb(pid)
            count += 1
    return {"server_mb": round(server, 1), "workers_mb": round(workers, 1), "workers": count}


# -- calibration --------------------------------------------------------------------------


def _calibration_loop(n: int) -> int:
    acc = 0
    table: dict[int, int] = {}
    for i in range(n):
        acc = (acc * 31 + i) % 1_000_003
        table[i & 1023] = acc
    return acc + len(table)


def calibrate(n: int = CALIBRATION_N, rounds: int = CALIBRATION_ROUNDS) -> float:
    """ms of the best of `rounds` runs of a fixed pure-Python loop: this machine's speed now
    (about 200 ms on the 2-core development VM on a fast day; it varies up to 3x)."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        _calibration_loop(n)
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


# -- statistics ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def parse_ts(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


# -- the phases ---------------------------------------------------------------------------


@dataclass
class Blast:
    sent: int = 0
    ok: int = 0
    non_2xx: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    first_error: str | None = None
    ids: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    t_first: float = 0.0  # wall clock of the first send
    t_last: float = 0.0  # wall clock of the last response
    cpu: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.transport_errors + sum(self.non_2xx.values())


async def blast(
    clients: Clients,
    n: int,
    concurrency: int,
    path: str,
    probe: Probe | None,
    budget: float,
    conns: list[Any] | None = None,
) -> Blast:
    """POST `path` `n` times over `concurrency` keep-alive connections, as fast as it goes.

    No request is started after `budget` seconds; `sent` then says how many went. `conns`:
    connections to use (the first `concurrency` of them) instead of new ones.
    """
    out = Blast()
    todo = iter(range(n))
    if conns is None:
        conns = [clients.connection() for _ in range(min(concurrency, n))]
    else:
        conns = conns[: min(concurrency, n)]
    stop_at = time.monotonic() + budget

    async def lane(conn: Any) -> None:
        for _ in todo:
            if time.monotonic() > stop_at:
                return
            t0 = time.perf_counter()
            out.sent += 1
            try:
                r = await conn.request("POST", path)
            except TransportError as e:
                out.transport_errors += 1
                out.first_error = out.first_error or str(e)
                continue
            out.latencies_ms.append((time.perf_counter() - t0) * 1000)
            if 200 <= r.status < 300:
                out.ok += 1
                location = r.headers.get("location", "")
                if location:
                    out.ids.append(location.rsplit("/", 1)[-1])
            else:
                out.non_2xx[r.status] = out.non_2xx.get(r.status, 0) + 1
                if out.first_error is None:
                    out.first_error = f"HTTP {r.status}: {r.body[:200]!r}"

    before = cpu_snapshot(probe)
    out.t_first = time.time()
    await asyncio.gather(*(lane(c) for c in conns))
    out.t_last = time.time()
    out.cpu = cpu_percent(before, cpu_snapshot(probe), out.t_last - out.t_first)
    out.latencies_ms.sort()
    return out


async def is_final(conn: Any, execution_id: str) -> bool:
    r = await conn.request("GET", f"/api/v1/executions/{execution_id}")
    if r.status != 200:
        raise BenchError(f"reading execution {execution_id}: HTTP {r.status}: {r.body[:200]!r}")
    return r.json()["status"] in FINAL


async def any_active(conn: Any) -> bool:
    """Whether any noop execution is queued, running or cancelling."""
    r = await conn.request("GET", f"{LIST}?job={JOB}&status=queued,running,cancelling&limit=1")
    if r.status != 200:
        raise BenchError(f"listing executions: HTTP {r.status}: {r.body[:200]!r}")
    return bool(r.json()["items"])


async def drain(conn: Any, last_id: str | None, deadline: float) -> tuple[bool, float]:
    """Wait until no noop execution is active; (drained, wall clock when seen).

    The local queue is first-in first-out, so the last id submitted is (about) the last to
    run: poll that one (a primary-key read) and only then the list, which scans.
    """
    while last_id is not None and time.monotonic() < deadline:
        if await is_final(conn, last_id):
            break
        await asyncio.sleep(0.05)
    while True:
        if not await any_active(conn):
            return True, time.time()
        if time.monotonic() > deadline:
            return False, time.time()
        await asyncio.sleep(0.25)


async def executions_since(conn: Any, since: float) -> dict[str, dict[str, Any]]:
    """Every noop execution created at or after `since` (wall clock), by id."""
    out: dict[str, dict[str, Any]] = {}
    query = {"job": JOB, "createdAfter": iso(since - 0.002), "limit": "500"}
    while True:
        r = await conn.request("GET", f"{LIST}?{urllib.parse.urlencode(query)}")
        if r.status != 200:
            raise BenchError(f"listing executions: HTTP {r.status}: {r.body[:200]!r}")
        page = r.json()
        for item in page["items"]:
            out[item["id"]] = item
        if not page.get("nextCursor"):
            return out
        query["cursor"] = page["nextCursor"]


async def phase_sync(
    clients: Clients, n: int, warmup: int, probe: Probe | None, budget: float
) -> dict[str, Any]:
    conn = clients.connection()
    path = f"{EXECUTE}?wait=30"
    latencies: list[float] = []
    bad: list[str] = []
    # Where a round trip goes, from the server's timestamps (ms resolution, same clock).
    legs: dict[str, list[float]] = {leg: [] for leg in SYNC_LEGS}

    async def one(record: bool) -> None:
        sent = time.time()
        t0 = time.perf_counter()
        try:
            r = await conn.request("POST", path)
        except TransportError as e:
            bad.append(str(e))
            return
        ms = (time.perf_counter() - t0) * 1000
        received = sent + ms / 1000
        body = r.json() if r.status in (200, 202) else {}
        status = body.get("status")
        if r.status != 200 or status != "succeeded":
            bad.append(f"HTTP {r.status} status={status}")
        elif record:
            latencies.append(ms)
            with contextlib.suppress(Exception):
                created, started, finished = (
                    parse_ts(body[k]) for k in ("createdAt", "startedAt", "finishedAt")
                )
                step = body["steps"][0]
                s0, s1 = parse_ts(step["startedAt"]), parse_ts(step["finishedAt"])
                points = [sent, created, started, s0, s1, finished, received]
                for leg, a, b in zip(SYNC_LEGS, points, points[1:], strict=True):
                    legs[leg].append((b - a) * 1000)  # type: ignore[operator]

    for _ in range(warmup):
        await one(False)
    bad.clear()
    before = cpu_snapshot(probe)
    t0 = time.time()
    stop_at = time.monotonic() + budget
    sent = 0
    for _ in range(n):
        if time.monotonic() > stop_at:
            break
        sent += 1
        await one(True)
    wall = time.time() - t0
    cpu = cpu_percent(before, cpu_snapshot(probe), wall)
    latencies.sort()
    return {
        "requests": n,
        "sent": sent,
        "ok": len(latencies),
        "errors": len(bad),
        "first_error": bad[0] if bad else None,
        "median_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "mean_ms": sum(latencies) / len(latencies) if latencies else float("nan"),
        "wall_s": wall,
        "cpu_percent": cpu,
        "legs_median_ms": {
            leg: round(statistics.median(v), 1) if v else None for leg, v in legs.items()
        },
    }


async def phase_throughput(
    clients: Clients, runs: int, concurrency: int, probe: Probe | None, budget: float
) -> dict[str, Any]:
    deadline = time.monotonic() + budget
    poll = clients.connection()
    before = cpu_snapshot(probe)
    sent = await blast(clients, runs, concurrency, EXECUTE, probe, budget * SUBMIT_SHARE)
    drained, seen_at = await drain(poll, sent.ids[-1] if sent.ids else None, deadline)
    cpu = cpu_percent(before, cpu_snapshot(probe), seen_at - sent.t_first)
    rows = await executions_since(poll, sent.t_first)
    mine = [rows[i] for i in sent.ids if i in rows]
    succeeded = [r for r in mine if r["status"] == "succeeded"]
    finished = [parse_ts(r["finishedAt"]) for r in mine if r["status"] in FINAL]
    last_finished = max((f for f in finished if f is not None), default=seen_at)
    span = last_finished - sent.t_first
    started = sorted(t for r in mine if (t := parse_ts(r["startedAt"])) is not None)
    return {
        "runs": runs,
        "submitted": sent.sent,
        "accepted": sent.ok,
        "submit_errors": sent.errors,
        "first_error": sent.first_error,
        "succeeded": len(succeeded),
        "not_succeeded": sent.sent - len(succeeded),
        "not_submitted": runs - sent.sent,
        "drained": drained,
        "submit_s": sent.t_last - sent.t_first,
        "span_s": span,
        "runs_per_s": len(succeeded) / span if span > 0 else float("nan"),
        "submit_per_s": sent.ok / (sent.t_last - sent.t_first),
        "first_start_after_s": (started[0] - sent.t_first) if started else None,
        "cpu_percent_submit": sent.cpu,
        "cpu_percent": cpu,
    }


async def phase_accept(
    clients: Clients, n: int, concurrency: int, probe: Probe | None, budget: float
) -> dict[str, Any]:
    deadline = time.monotonic() + budget
    sent = await blast(clients, n, concurrency, EXECUTE, probe, budget * SUBMIT_SHARE)
    wall = sent.t_last - sent.t_first
    poll = clients.connection()
    drained, seen_at = await drain(poll, sent.ids[-1] if sent.ids else None, deadline)
    lat = sent.latencies_ms
    return {
        "requests": n,
        "sent": sent.sent,
        "accepted": sent.ok,
        "errors": sent.errors,
        "non_2xx": {str(k): v for k, v in sent.non_2xx.items()},
        "transport_errors": sent.transport_errors,
        "first_error": sent.first_error,
        "wall_s": wall,
        "accepted_per_s": sent.ok / wall if wall > 0 else float("nan"),
        "latency_median_ms": percentile(lat, 50),
        "latency_p99_ms": percentile(lat, 99),
        "cpu_percent": sent.cpu,
        "drained": drained,
        "drain_s": seen_at - sent.t_last,
    }


async def phase_listing(
    clients: Clients, n: int, probe: Probe | None, budget: float
) -> dict[str, Any]:
    """`GET .../executions` n times for each of LISTINGS, one at a time on one connection,
    after 5 unmeasured; for "cursor", walks of CURSOR_PAGES pages after the first page, each
    page's request measured. Each kind gets an equal share of the budget."""
    conn = clients.connection()
    share = budget / len(LISTINGS)
    out: dict[str, Any] = {"requests": n, "kinds": {}}
    before = cpu_snapshot(probe)
    t0 = time.time()

    async def get(query: str) -> tuple[float, dict[str, Any] | None, str | None]:
        start = time.perf_counter()
        try:
            r = await conn.request("GET", f"{LIST}?{query}")
        except TransportError as e:
            return 0.0, None, str(e)
        ms = (time.perf_counter() - start) * 1000
        if r.status != 200:
            return ms, None, f"HTTP {r.status}: {r.body[:200]!r}"
        return ms, r.json(), None

    for kind, (label, query) in LISTINGS.items():
        latencies: list[float] = []
        errors: list[str] = []
        rows = 0
        stop_at = time.monotonic() + share
        for _ in range(5):
            await get(query)
        cursor: str | None = None
        while len(latencies) + len(errors) < n and time.monotonic() < stop_at:
            if kind == "cursor":
                if cursor is None or (len(latencies) % CURSOR_PAGES == 0 and latencies):
                    _, page, err = await get(query)  # a walk's first page, not measured
                    cursor = page.get("nextCursor") if page else None
                    if cursor is None:
                        errors.append(err or "fewer than two pages stored")
                        break
                ms, page, err = await get(f"{query}&cursor={urllib.parse.quote(cursor)}")
                cursor = page.get("nextCursor") if page else None
            else:
                ms, page, err = await get(query)
            if err is not None:
                errors.append(err)
                continue
            latencies.append(ms)
            rows = len(page["items"]) if page else 0
        latencies.sort()
        out["kinds"][kind] = {
            "label": label,
            "ok": len(latencies),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "items": rows,
            "median_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
        }
    out["cpu_percent"] = cpu_percent(before, cpu_snapshot(probe), time.time() - t0)
    return out


def soak_budget(n: int) -> float:
    """Seconds --soak N may take: SOAK_BASE_S + N / SOAK_FLOOR_RUNS_PER_S."""
    return SOAK_BASE_S + n / SOAK_FLOOR_RUNS_PER_S


async def not_succeeded_since(conn: Any, since: float, cap: int = 5000) -> int:
    """How many noop executions created at or after `since` ended otherwise than succeeded
    (failed, cancelled, timed out), counted up to `cap`."""
    query = {
        "job": JOB,
        "status": "failed,cancelled,timed_out",
        "createdAfter": iso(since - 0.002),
        "limit": "500",
    }
    count = 0
    while count < cap:
        r = await conn.request("GET", f"{LIST}?{urllib.parse.urlencode(query)}")
        if r.status != 200:
            raise BenchError(f"listing executions: HTTP {r.status}: {r.body[:200]!r}")
        page = r.json()
        count += len(page["items"])
        if not page.get("nextCursor"):
            break
        query["cursor"] = page["nextCursor"]
    return count


async def phase_soak(
    clients: Clients,
    n: int,
    concurrency: int,
    probe: Probe | None,
    budget: float,
    sample_every: int,
) -> dict[str, Any]:
    """`n` no-op runs (202 execute) over `concurrency` connections, in chunks of at most
    SOAK_CHUNK, each chunk drained before the next; the server's and the workers' resident
    memory sampled before the first, every `sample_every` runs and at the end (each sample
    taken with nothing queued). Stops submitting when the budget is spent."""
    deadline = time.monotonic() + budget
    conns = [clients.connection() for _ in range(max(1, concurrency))]
    poll = clients.connection()
    chunk = max(1, min(SOAK_CHUNK, sample_every))
    start = time.time()
    t0 = time.monotonic()
    before = cpu_snapshot(probe)

    def sample(runs: int) -> dict[str, Any]:
        mem = memory_snapshot(probe) or {}
        return {"runs": runs, "t_s": round(time.monotonic() - t0, 1), **mem}

    samples = [sample(0)]
    sent = accepted = errors = 0
    first_error: str | None = None
    drained = True
    next_sample = sample_every
    while sent < n and time.monotonic() < deadline:
        size = min(chunk, n - sent, next_sample - sent)
        out = await blast(
            clients, size, concurrency, EXECUTE, None, deadline - time.monotonic(), conns
        )
        sent += out.sent
        accepted += out.ok
        errors += out.errors
        first_error = first_error or out.first_error
        drained, _ = await drain(poll, out.ids[-1] if out.ids else None, deadline)
        # Idle longer than the server's keep-alive timeout (5 s) while the runs drain (or
        # the next chunk goes out), a connection would be closed under the next request:
        # each chunk connects anew.
        for conn in [*conns, poll]:
            await conn.close()
        if not drained or out.sent < size:
            break
        if sent >= next_sample:
            samples.append(sample(sent))
            next_sample += sample_every
    if not drained:  # the budget ran out with runs queued: give them a minute
        drained, _ = await drain(poll, None, time.monotonic() + 60)
    if samples[-1]["runs"] != sent:
        samples.append(sample(sent))
    wall = time.time() - start
    cpu = cpu_percent(before, cpu_snapshot(probe), wall)
    not_succeeded = await not_succeeded_since(poll, start)
    # Growth: from the sample after the first `sample_every` runs (the start-up allocations
    # are done by then) to the last; with a single sample after the start, from the start.
    first = samples[1] if len(samples) > 2 else samples[0]
    last = samples[-1]
    growth = None
    if "server_mb" in first and "server_mb" in last:
        growth = round(last["server_mb"] - first["server_mb"], 1)
    return {
        "runs": n,
        "sent": sent,
        "accepted": accepted,
        "errors": errors,
        "first_error": first_error,
        "not_succeeded": not_succeeded,
        "drained": drained,
        "wall_s": round(wall, 1),
        "runs_per_s": round(accepted / wall, 1) if wall > 0 else float("nan"),
        "budget_s": round(budget, 1),
        "sample_every": sample_every,
        "samples": samples,
        "server_mb": last.get("server_mb"),
        "workers_mb": last.get("workers_mb"),
        "growth_from": first["runs"],
        "growth_mb": growth,
        "cpu_percent": cpu,
    }


# -- the setups ---------------------------------------------------------------------------

# What a setup runs on: its database and its executor.
SETUPS = {
    "sqlite+local": ("sqlite", "local"),
    "postgres+local": ("postgres", "local"),
    "postgres+celery": ("postgres", "celery"),
}
DEFAULT_SETUPS = "sqlite+local,postgres+local,postgres+celery"
STORED_SETUPS = ("sqlite+local", "postgres+local")
# The broker's URL, port, name, and process name (for its CPU). Redis database 11: the tests
# use 7 and 8; the queue name is new for every run anyway.
BROKERS = {
    "redis": ("redis://127.0.0.1:6379/11", 6379, "Redis", "redis-server"),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672, "RabbitMQ", "beam.smp"),
}
PG_ADMIN_URL = os.environ.get(
    "JOBPORT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class Skip(Exception):
    """A setup whose service is absent: reported as skipped, not as a failure."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unreachable(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as e:
        return e.strerror or str(e)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send the child SIGTERM if the bench dies without stopping it (SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the process group `proc` leads (it was started in a session of its own):
    whatever it left behind (pool processes) goes too."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


# Every server of this bench that may have processes alive, for the watchdog and signals.
_LIVE: list[Server] = []


class Server:
    """`jobport serve --demo` as a child process, on a fresh database, with its workers.

    `sqlite+local` (the default): a SQLite file in a temporary directory and the local pool.
    `postgres+local`: a new PostgreSQL database (dropped at the end) and the local pool.
    `postgres+celery`: the same database, JOBPORT_EXECUTOR=celery, and `workers` separate
    `jobport worker --concurrency 1` processes on a queue of its own (the noop job is moved
    there). Each process is the leader of its own process group; `stop` kills the groups.
    """

    def __init__(
        self,
        port: int,
        workers: int,
        setup: str = "sqlite+local",
        broker: str = "redis",
        stored: int | None = None,
        templates: Any = None,
        celery_pool: bool = False,
    ) -> None:
        self.port = port
        # celery setups: one `jobport worker --concurrency <workers>` (one Celery consumer
        # and its pool, bench/compare.py's baseline's shape) rather than <workers> workers of
        # concurrency 1 (as on as many hosts).
        self.celery_pool = celery_pool
        # --stored: the database starts as a copy of `templates`' one with `stored` runs
        # (bench/stored.py), and the server does not prune (JOBPORT_PRUNE_INTERVAL_SECONDS=0).
        self.stored = stored
        self.templates = templates
        self.workers = workers
        self.setup = setup
        self.database, self.executor = SETUPS[setup]
        self.broker = broker
        self.tmp = tempfile.TemporaryDirectory(prefix="jobport-bench-")
        self.db_path = Path(self.tmp.name) / "bench.db"
        self.database_url = f"sqlite:///{self.db_path}"
        self.pg_name: str | None = None
        self.queue = f"bench-{secrets.token_hex(4)}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self.log_path = Path(self.tmp.name) / "server.log"
        self.key: str | None = None
        self._logs: list[Any] = []
        self._stopped = False

    @property
    def label(self) -> str:
        """The column the setup's figures go in."""
        return self.setup if self.stored is None else f"{self.setup} @{self.stored:,}"

    def describe(self) -> str:
        if self.stored is not None:
            return (
                f"{self.database}, local pool of {self.workers}, {self.stored:,} runs stored "
                "before the start, pruning off"
            )
        if self.executor == "celery":
            shape = (
                f"1 x `jobport worker --concurrency {self.workers}` (prefork pool)"
                if self.celery_pool
                else f"{self.workers} x `jobport worker --concurrency 1` (solo pool)"
            )
            return f"{self.database}, {shape}, {self.broker} broker, queue {self.queue}"
        return f"{self.database}, local pool of {self.workers}"

    def probe(self) -> Probe | None:
        if self.proc is None:
            return None
        return Probe(
            self.proc.pid,
            [w.pid for w in self.worker_procs],
            self.pg_name,
            BROKERS[self.broker][3] if self.executor == "celery" else None,
        )

    def prepare(self) -> None:
        """Check that the setup's services answer (else Skip), make its database."""
        _LIVE.append(self)
        if self.executor == "celery":
            _, port, name, _ = BROKERS[self.broker]
            if why := _unreachable("127.0.0.1", port):
                raise Skip(f"{name} unreachable on 127.0.0.1:{port} ({why})")
            try:
                import celery  # noqa: F401
            except ImportError:
                raise Skip("celery not installed (pip install -e '.[celery]')") from None
        if self.database == "postgres":
            try:
                import psycopg
            except ImportError:
                raise Skip("psycopg not installed (pip install -e '.[postgres]')") from None
            where = urllib.parse.urlsplit(PG_ADMIN_URL)
            if why := _unreachable(where.hostname or "127.0.0.1", where.port or 5432):
                raise Skip(f"PostgreSQL unreachable on {where.netloc.rsplit('@', 1)[-1]} ({why})")
            template = self._template()
            try:
                with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
                    name = f"jobport_bench_{secrets.token_hex(6)}"
                    if template is None:
                        admin.execute(f'CREATE DATABASE "{name}"')
                    else:
                        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            except psycopg.Error as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise Skip(f"PostgreSQL unavailable: {reason}") from None
            self.pg_name = name
            self.database_url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        elif self.stored is not None:
            shutil.copyfile(self._template(), self.db_path)
        self.key = self.make_key()

    def _template(self) -> Any:
        """--stored: the filled database to copy (a SQLite file's path, a PostgreSQL
        database's name), made on first use; None without --stored."""
        if self.stored is None:
            return None
        try:
            if self.database == "sqlite":
                return self.templates.sqlite(self.stored)
            return self.templates.postgres(self.stored)
        except Exception as e:
            raise BenchError(f"filling {self.stored:,} stored runs: {type(e).__name__}: {e}") from e

    def make_key(self) -> str:
        """An Administrator API key, made in the fresh database before the server starts."""
        from jobport.domain.access import key_string
        from jobport.services import access
        from jobport.services.runtime import Runtime
        from jobport.settings import Settings
        from jobport.store.db import Database

        url = self.database_url
        db = Database(url, pool=False)
        try:
            db.upgrade()
            rt = Runtime(Settings(database_url=url, admin_password=secrets.token_urlsafe()), db)
            access.bootstrap(rt)
            row, secret = access.create_key(
                rt, description="bench", expires_at=None, roles=[("Administrator", None)]
            )
        finally:
            db.dispose()
        return key_string(row.client_id, secret)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPORT_")}
        env["JOBPORT_DATABASE_URL"] = self.database_url
        env["JOBPORT_EXECUTOR"] = self.executor
        if self.executor == "celery":
            env["JOBPORT_BROKER_URL"] = BROKERS[self.broker][0]
        if self.stored is not None:
            env["JOBPORT_PRUNE_INTERVAL_SECONDS"] = "0"
        return env

    def _spawn(self, cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        log = open(log_path, "ab")  # noqa: SIM115
        self._logs.append(log)
        # cwd: the temp dir, so that no ./jobport.toml of the caller changes the settings
        # (and the server's encryption key file there is the workers' too).
        return subprocess.Popen(
            cmd,
            env=self.env(),
            cwd=self.tmp.name,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def start(self) -> None:
        if self.key is None:
            if self not in _LIVE:
                _LIVE.append(self)
            self.key = self.make_key()
        cmd = [
            sys.executable, "-m", "jobport.cli", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self.workers), "--demo",
            "--log-level", "warning",
        ]  # fmt: skip
        self.proc = self._spawn(cmd, self.log_path)

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        conn = RawConnection("127.0.0.1", self.port)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise BenchError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
                with contextlib.suppress(TransportError):
                    r = await conn.request("GET", "/healthz")
                    if r.status == 200:
                        return
                await asyncio.sleep(0.1)
            raise BenchError(f"server not healthy after {timeout:g}s:\n{self.tail()}")
        finally:
            await conn.close()

    async def ready(self) -> None:
        """Healthy, and for celery: the noop job on this run's queue, its workers answering."""
        await self.wait_healthy()
        if self.executor != "celery":
            return
        conn = RawConnection("127.0.0.1", self.port, self.key)
        try:
            r = await conn.request(
                "PATCH",
                f"/api/v1/projects/{PROJECT}/jobs/{JOB}",
                json.dumps({"queue": self.queue}).encode(),
            )
        finally:
            await conn.close()
        if r.status != 200:
            raise BenchError(
                f"moving {JOB} to queue {self.queue}: HTTP {r.status}: {r.body[:300]!r}"
            )
        processes, concurrency = (1, self.workers) if self.celery_pool else (self.workers, 1)
        for i in range(processes):
            cmd = [
                sys.executable, "-m", "jobport.cli", "worker", "--queues", self.queue,
                "--concurrency", str(concurrency), "--metrics-bind", "", "--log-level", "warning",
            ]  # fmt: skip
            self.worker_procs.append(self._spawn(cmd, Path(self.tmp.name) / f"worker-{i}.log"))
        await asyncio.to_thread(self._wait_workers, 60.0)

    def _wait_workers(self, timeout: float) -> None:
        """Until every worker answers a Celery ping (its consumer is up), by its hostname."""
        from celery import Celery

        app = Celery("jobport-bench", broker=BROKERS[self.broker][0], set_as_current=False)
        node = os.uname().nodename
        waiting = {f"jobport-{w.pid}@{node}": w for w in self.worker_procs}
        deadline = time.monotonic() + timeout
        try:
            while waiting:
                for name, w in waiting.items():
                    if w.poll() is not None:
                        raise BenchError(
                            f"worker {name} exited with {w.returncode}:\n{self.tail()}"
                        )
                if time.monotonic() > deadline:
                    raise BenchError(f"workers not ready after {timeout:g}s: {sorted(waiting)}")
                for reply in app.control.ping(destination=list(waiting), timeout=1.0):
                    for name in reply:
                        waiting.pop(name, None)
        finally:
            app.close()

    def tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(Path(self.tmp.name).glob("*.log")):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def _delete_queue(self) -> None:
        """What the run's queue left in the broker: RabbitMQ's durable queue; in Redis
        (database 11 is the bench's) the queue's list, if runs were left, and kombu's
        binding sets."""
        url = BROKERS[self.broker][0]
        if self.broker == "redis":
            import redis

            client = redis.Redis.from_url(url, socket_timeout=3)
            try:
                for key in client.scan_iter(match=f"*{self.queue}*"):
                    client.delete(key)
            finally:
                client.close()
            return
        from celery import Celery

        app = Celery("jobport-bench", broker=url, set_as_current=False)
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_delete(self.queue)
        finally:
            app.close()

    def kill(self) -> None:
        """At once: SIGKILL every process group (the watchdog's and a signal's way)."""
        for proc in [*self.worker_procs, self.proc]:
            _kill_group(proc)

    def stop(self) -> None:
        """Gracefully, then by force: the workers and the server, their process groups, and
        the PostgreSQL database. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        for w in self.worker_procs:  # Celery's warm shutdown: nothing runs at this point
            with contextlib.suppress(ProcessLookupError):
                w.send_signal(signal.SIGTERM)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn: graceful shutdown, workers stopped
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
        until = time.monotonic() + 10
        for w in self.worker_procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.wait(max(0.1, until - time.monotonic()))
        self.kill()  # anything left in the groups (or a server that did not stop)
        for log in self._logs:
            with contextlib.suppress(Exception):
                log.close()
        if self.worker_procs:
            with contextlib.suppress(Exception):
                self._delete_queue()
        if self.pg_name is not None:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        self.tmp.cleanup()
        with contextlib.suppress(ValueError):
            _LIVE.remove(self)


def kill_everything() -> None:
    for server in list(_LIVE):
        server.kill()


# -- output -------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


# One row of the table: a key (to line the setups up), the label, the measured value, the
# target and the verdict.
Row = tuple[str, str, str, str, str]


def table_rows(res: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    postgres = str(res.get("setup", "")).startswith("postgres")

    def judged(ok: bool) -> str:  # a and c have targets on SQLite only
        return "" if postgres else verdict(ok)

    if a := res.get("sync"):
        ok = a["errors"] == 0
        rows += [
            ("a.n", "a  sync round trips measured", f"{a['ok']} of {a['requests']}", "", ""),
            ("a.median", "a  sync round trip, median", f"{a['median_ms']:.1f} ms",
             f"<= {TARGETS['sync_median_ms']:g} ms (sqlite)",
             judged(a["median_ms"] <= TARGETS["sync_median_ms"] and ok)),
            ("a.p90", "a  sync round trip, p90", f"{a['p90_ms']:.1f} ms", "", ""),
            ("a.p99", "a  sync round trip, p99", f"{a['p99_ms']:.1f} ms",
             f"<= {TARGETS['sync_p99_ms']:g} ms (sqlite)",
             judged(a["p99_ms"] <= TARGETS["sync_p99_ms"] and ok)),
            ("a.max", "a  sync round trip, max", f"{a['max_ms']:.1f} ms", "", ""),
            ("a.errors", "a  sync errors (non-200 or not succeeded)", str(a["errors"]), "0",
             verdict(ok)),
        ]  # fmt: skip
    if b := res.get("throughput"):
        rows += [
            ("b.n", "b  runs submitted", f"{b['submitted']} of {b['runs']}", "", ""),
            ("b.rate", "b  end-to-end throughput", f"{b['runs_per_s']:.0f} runs/s",
             f">= {TARGETS['runs_per_s']:g}, postgres {POSTGRES_RUNS_PER_S:g} runs/s",
             verdict(b["runs_per_s"] >= (POSTGRES_RUNS_PER_S if postgres
                                         else TARGETS["runs_per_s"]))),
            ("b.bad", "b  runs not succeeded (of those submitted)", str(b["not_succeeded"]),
             "0", verdict(b["not_succeeded"] == 0)),
        ]  # fmt: skip
    if c := res.get("accept"):
        rows += [
            ("c.n", "c  execute requests sent", f"{c['sent']} of {c['requests']}", "", ""),
            ("c.rate", "c  accepted execute requests", f"{c['accepted_per_s']:.0f} req/s",
             f">= {TARGETS['accepted_per_s']:g} req/s (sqlite)",
             judged(c["accepted_per_s"] >= TARGETS["accepted_per_s"])),
            ("c.errors", "c  errors (non-2xx + transport)", str(c["errors"]), "0",
             verdict(c["errors"] == 0)),
        ]  # fmt: skip
    if d := res.get("listing"):
        for kind, k in d["kinds"].items():
            rows.append((
                f"d.{kind}", f"d  list {k['label']}, median / p99",
                f"{k['median_ms']:.1f} / {k['p99_ms']:.1f} ms", "p99 <= 50 ms",
                verdict(k["errors"] == 0 and k["p99_ms"] <= TARGETS["list_p99_ms"]),
            ))  # fmt: skip
    for phase, mem in (res.get("memory") or {}).items():
        when = "at start" if phase == "start" else f"after {phase}"
        rows.append(
            (
                f"m.{phase}",
                f"m  server resident memory {when}",
                f"{mem['server_mb']:.1f} MB",
                "",
                "",
            )
        )
    if s := res.get("soak"):
        mb = s.get("server_mb")
        rows += [
            ("s.n", "soak  runs submitted", f"{s['sent']} of {s['runs']}", "", ""),
            ("s.rss", f"soak  server resident memory after {s['sent']:,} runs",
             f"{mb:.1f} MB" if mb is not None else "-", f"< {SOAK_TARGET_MB:g} MB",
             verdict(mb is not None and mb < SOAK_TARGET_MB)),
            ("s.growth", f"soak  server memory growth, after {s['growth_from']:,} runs -> end",
             f"{s['growth_mb']:+.1f} MB" if s["growth_mb"] is not None else "-", "", ""),
            ("s.errors", "soak  errors, runs not succeeded",
             f"{s['errors']}, {s['not_succeeded']}", "0, 0",
             verdict(s["errors"] == 0 and s["not_succeeded"] == 0)),
        ]  # fmt: skip
    return rows


def cpu_text(cpu: dict[str, int]) -> str:
    return "  ".join(f"{k} {v}%" for k, v in cpu.items())


def column_of(res: dict[str, Any]) -> str:
    return str(res.get("label") or res["setup"])


def columns(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The results by column, in order: the rounds of one setup (and size) share one."""
    out: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        out.setdefault(column_of(res), []).append(res)
    return out


def side_by_side(results: list[dict[str, Any]]) -> list[list[str]]:
    """The table: a row per measure, a column per setup, then the target. With --rounds,
    a cell lists each round's value, in order, and says MISS if any round missed."""
    grouped = columns(results)
    per_column = [
        [{r[0]: r for r in table_rows(res)} for res in group] for group in grouped.values()
    ]
    keys: list[str] = []
    labels: dict[str, tuple[str, str]] = {}
    for rounds in per_column:
        for rows in rounds:
            for key, (_, label, _, target, _) in rows.items():
                if key not in labels:
                    keys.append(key)
                    labels[key] = (label, target)
    status = []
    for group in grouped.values():
        states = []
        for res in group:
            if "skipped" in res:
                reason = res["skipped"]
                states.append(f"skipped: {reason if len(reason) <= 64 else reason[:61] + '...'}")
            elif "error" in res:
                states.append("FAILED (see below)")
            else:
                states.append("ran")
        status.append(
            ", ".join(dict.fromkeys(states)) + (f" x{len(group)}" if len(group) > 1 else "")
        )
    table = [["measure", *grouped, "target"]]
    table.append(["setup", *status, ""])
    for key in keys:
        cells = []
        for rounds in per_column:
            found = [rows[key] for rows in rounds if key in rows]
            if not found:
                cells.append("-")
                continue
            verdicts = {row[4] for row in found}
            mark = "MISS" if "MISS" in verdicts else ("PASS" if "PASS" in verdicts else "")
            cells.append(f"{', '.join(row[2] for row in found)}  {mark}".rstrip())
        table.append([labels[key][0], *cells, labels[key][1]])
    return table


# The rows the issue asks to stay within 20% of the empty store's (and whether more is better).
CURVE_ROWS = {
    "a.median": ("sync", "median_ms", False),
    "a.p99": ("sync", "p99_ms", False),
    "b.rate": ("throughput", "runs_per_s", True),
    "c.rate": ("accept", "accepted_per_s", True),
}


def curve(results: list[dict[str, Any]]) -> list[str]:
    """For --stored: each size's change against the same setup's empty store (means over
    the rounds), for the rows of CURVE_ROWS; the target is within 20%."""
    lines = []
    by_setup: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for res in results:
        if res.get("stored") is not None and "error" not in res and "skipped" not in res:
            by_setup.setdefault(res["setup"], {}).setdefault(res["stored"], []).append(res)
    for setup, sizes in by_setup.items():
        if 0 not in sizes:
            continue
        for size, group in sizes.items():
            if size == 0:
                continue
            parts = []
            for key, (phase, field_, higher_better) in CURVE_ROWS.items():
                base = [r[phase][field_] for r in sizes[0] if phase in r]
                now = [r[phase][field_] for r in group if phase in r]
                if not base or not now:
                    continue
                change = statistics.mean(now) / statistics.mean(base) - 1
                worse = -change if higher_better else change
                parts.append(f"{key} {change:+.0%}{'' if worse <= 0.20 else ' (MISS)'}")
            lines.append(f"{setup} @{size:,} against @0: {'  '.join(parts)}")
    return lines


def print_details(res: dict[str, Any]) -> None:
    if a := res.get("sync"):
        print(
            f"  a: mean {a['mean_ms']:.1f} ms over {a['wall_s']:.1f}s; "
            f"cpu {cpu_text(a['cpu_percent'])}"
        )
        legs = a.get("legs_median_ms") or {}
        if any(v is not None for v in legs.values()):
            print("     median legs of a round trip (server timestamps, ms resolution):")
            for leg, v in legs.items():
                print(f"       {leg:34s} {v if v is not None else '-':>6} ms")
        if a["first_error"]:
            print(f"     first error: {a['first_error']}")
    if b := res.get("throughput"):
        print(
            f"  b: {b['accepted']} of {b['runs']} accepted in {b['submit_s']:.2f}s "
            f"({b['submit_per_s']:.0f} req/s, cpu {cpu_text(b['cpu_percent_submit'])}); "
            f"first submit -> last finished {b['span_s']:.2f}s; drained={b['drained']}"
        )
        print(
            f"     cpu over the whole span: {cpu_text(b['cpu_percent'])}; not submitted "
            f"{b['not_submitted']}, submitted but not succeeded {b['not_succeeded']}"
        )
        if b["first_error"]:
            print(f"     first error: {b['first_error']}")
    if c := res.get("accept"):
        print(
            f"  c: {c['accepted']} of {c['requests']} accepted in {c['wall_s']:.2f}s; "
            f"latency median {c['latency_median_ms']:.1f} ms, p99 {c['latency_p99_ms']:.1f} ms; "
            f"cpu {cpu_text(c['cpu_percent'])}"
        )
        print(
            f"     runs drained {c['drain_s']:.1f}s after the last request (drained={c['drained']})"
        )
        if c["first_error"]:
            print(f"     first error: {c['first_error']} (non-2xx {c['non_2xx']})")
    if d := res.get("listing"):
        print(f"  d: cpu {cpu_text(d['cpu_percent'])}")
        for k in d["kinds"].values():
            print(
                f"     {k['label']:26s} {k['ok']} requests, median {k['median_ms']:.1f} ms, "
                f"p99 {k['p99_ms']:.1f} ms, max {k['max_ms']:.1f} ms, {k['items']} items a page"
                + (f"; {k['errors']} errors, first: {k['first_error']}" if k["errors"] else "")
            )
    if mem := res.get("memory"):
        print("  memory (VmRSS, MB = MiB; workers: the sum over the processes below the server")
        print("  and celery's workers, shared pages counted in each):")
        for phase, m in mem.items():
            when = "at start" if phase == "start" else f"after {phase}"
            print(
                f"     {when:9s} server {m['server_mb']:7.1f}   workers {m['workers_mb']:7.1f} "
                f"({m['workers']} processes)"
            )
    if s := res.get("soak"):
        print(
            f"  soak: {s['accepted']:,} of {s['runs']:,} runs accepted in {s['wall_s']:.0f}s "
            f"({s['runs_per_s']:.0f} runs/s, budget {s['budget_s']:.0f}s, chunks of "
            f"{min(SOAK_CHUNK, s['sample_every']):,} drained in turn); "
            f"cpu {cpu_text(s['cpu_percent'])}"
        )
        print("     runs done   server MB   workers MB   seconds")
        for p in s["samples"]:
            print(
                f"     {p['runs']:>9,}   {p.get('server_mb', float('nan')):9.1f}   "
                f"{p.get('workers_mb', float('nan')):10.1f}   {p['t_s']:7.1f}"
            )
        if s["first_error"]:
            print(f"     first error: {s['first_error']}")
    if prof := res.get("profile"):
        print_profile(prof)
    for note in res.get("notes", []):
        print(f"  note: {note}")


def print_profile(prof: dict[str, Any]) -> None:
    """Per phase: the server's and the workers' samples, the CPU (seconds holding the GIL)
    per request and per run, and the top functions by inclusive share."""
    if "skipped" in prof:
        print(f"  profile: skipped: {prof['skipped']}")
        return
    print(
        "  profile (py-spy --gil, 200 Hz; share = of the group's samples whose stack holds the "
        "function; the project's and libraries' frames only):"
    )
    for phase, p in prof.items():
        print(f"  profile {phase}: {', '.join(p['files'])}")
        for err in p["errors"]:
            print(f"     problem: {err}")
        for group, per, count in (
            ("server", "request", p["requests"]),
            ("workers", "run", p["runs"]),
        ):
            g = p[group]
            if not g["samples"]:
                continue
            each = f", {1000 * g['seconds'] / count:.2f} ms per {per}" if count else ""
            print(
                f"     {group}: {g['samples']} samples = {g['seconds']:.1f}s holding the GIL"
                f"{each} ({count} {per}s"
                + (f", {g['processes']} processes" if group == "workers" else "")
                + ")"
            )
            for name, share, folded, outer in g["top"]:
                callers = (
                    f"  (+{folded} caller{'s' if folded > 1 else ''}, outermost {100 * outer:.1f}%)"
                    if folded
                    else ""
                )
                print(f"       {100 * share:5.1f}%  {name}{callers}")


def print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"\njobport bench  {env['date']}  nproc={env['nproc']}  python {env['python']}  "
        f"workers={env['workers']}  concurrency={env['concurrency']}  client={env['client']}  "
        f"commit={env['commit']}  load average {env['loadavg']}"
    )
    if env.get("calibration_ms") is not None:
        print(
            f"calibration: {env['calibration_ms']:.0f} ms (best of {CALIBRATION_ROUNDS} of a "
            "fixed pure-Python loop; lower is a faster machine; bench/README.md)"
        )
    table = side_by_side(report["setups"])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for i, row in enumerate(table):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print(line)
    print(line)
    for text in curve(report["setups"]):
        print(text)
    if report.get("fill"):
        print("stored runs filled in: " + ", ".join(report["fill"]))
    print(
        "details (cpu: 100% = one core; client = this process, workers = all worker "
        "processes, postgres = the backends of the bench's database, broker = the broker "
        "server, shared with anyone else using it)"
    )
    for res in report["setups"]:
        print(f"{column_of(res)}: {res.get('description', '')}")
        if "skipped" in res:
            print(f"  skipped: {res['skipped']}")
        elif "error" in res:
            print(f"  FAILED: {res['error']}")
        else:
            print(f"  ({res['elapsed_s']:.0f}s)")
            print_details(res)


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500, help="a: sync round trips (500)")
    p.add_argument("--warmup", type=int, default=20, help="a: unmeasured round trips first (20)")
    p.add_argument("--runs", type=int, default=2000, help="b: executions to run end to end (2000)")
    p.add_argument("--accepts", type=int, default=5000, help="c: execute requests to send (5000)")
    p.add_argument("--concurrency", type=int, default=32, help="b, c: requests in flight (32)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local pool processes, or `jobport worker` processes for celery (CPU count)",
    )
    p.add_argument(
        "--setups",
        default=DEFAULT_SETUPS,
        help=f"comma list among {', '.join(SETUPS)} ({DEFAULT_SETUPS})",
    )
    p.add_argument(
        "--broker", choices=sorted(BROKERS), default="redis", help="for celery setups (redis)"
    )
    p.add_argument(
        "--celery-pool",
        action="store_true",
        help="celery setups: one `jobport worker --concurrency WORKERS` (one consumer and its "
        "pool, the shape of bench/compare.py's Celery baseline) instead of WORKERS workers of "
        "concurrency 1",
    )
    p.add_argument("--url", help="use this running server (http://127.0.0.1:PORT) instead")
    p.add_argument(
        "--key",
        default=os.environ.get("JOBPORT_KEY"),
        help="API key for --url (default $JOBPORT_KEY); a started server gets its own key",
    )
    p.add_argument("--port", type=int, default=0, help="port for the started server (free one)")
    p.add_argument("--only", help="phases to run, e.g. 'a' or 'bc' (abc; with --stored abcd)")
    p.add_argument(
        "--stored",
        help="comma list of stored-run counts, e.g. 0,100000,1000000: measure sqlite+local "
        "(and postgres+local if in --setups) once per count on a database that holds that "
        "many ended runs with 20 log lines each, pruning off (bench/stored.py)",
    )
    p.add_argument("--listings", type=int, default=200, help="d: requests per listing (200)")
    p.add_argument(
        "--rounds", type=int, default=1, help="measure every column this many times, alternating"
    )
    p.add_argument("--client", choices=["raw", "httpx2"], default="raw", help="load generator")
    p.add_argument(
        "--timeout", type=float, help="limit per setup in seconds (180; 240 with phase d)"
    )
    p.add_argument(
        "--soak",
        type=int,
        default=0,
        help="after the phases, N more no-op runs in drained chunks of 2000, the server's "
        "memory sampled every --soak-sample runs, against 150 MB (0: none)",
    )
    p.add_argument(
        "--soak-sample", type=int, default=10_000, help="soak: runs between samples (10000)"
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="record each phase with py-spy into DIR/<setup>-<phase>-server.txt and print "
        "the top functions of the server and the workers",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 if any row is a MISS")
    args = p.parse_args(argv)
    if args.only is None:
        args.only = "abcd" if args.stored else "abc"
    if args.only == "none":
        args.only = ""
    if set(args.only) - set("abcd") or (not args.only and not args.soak):
        p.error("--only takes letters among a, b, c, d (or none, with --soak)")
    if args.soak < 0 or args.soak_sample < 1:
        p.error("--soak takes a count of runs, --soak-sample a positive count")
    if (args.soak or args.profile) and args.url:
        p.error("--soak and --profile read the server's processes: they do not go with --url")
    if args.timeout is None:
        args.timeout = 180.0 + (BUDGET["d"] if "d" in args.only else 0.0)
        if args.soak:
            args.timeout += soak_budget(args.soak) + 90
        if args.profile:
            args.timeout += 10.0 * len(args.only)
    args.setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    if not args.setups or set(args.setups) - set(SETUPS):
        p.error(f"--setups takes a comma list among {', '.join(SETUPS)}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.stored is not None:
        try:
            args.stored = [int(n.replace("_", "")) for n in args.stored.split(",") if n.strip()]
        except ValueError:
            p.error("--stored takes a comma list of counts, e.g. 0,100000,1000000")
        if not args.stored or min(args.stored) < 0:
            p.error("--stored takes a comma list of counts, e.g. 0,100000,1000000")
        if args.url:
            p.error("--stored starts its own servers; it does not go with --url")
        args.setups = [s for s in args.setups if s in STORED_SETUPS]
        if not args.setups:
            p.error(f"--stored measures {' and '.join(STORED_SETUPS)} only")
    return args


def git_commit() -> str | None:
    """HEAD of the repository this bench lives in, plus '+dirty' if src/ has local edits."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def target_of(args: argparse.Namespace) -> tuple[str, int]:
    if not args.url:
        return "127.0.0.1", args.port or free_port()
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or url.hostname not in LOOPBACK or not url.port:
        raise BenchError("--url must be http://127.0.0.1:PORT (the bench talks to loopback only)")
    return "127.0.0.1", url.port


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": dt.date.today().isoformat(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "workers": args.workers if not args.url else "external",
        "concurrency": args.concurrency,
        "client": args.client,
        "commit": git_commit(),
        "loadavg": round(os.getloadavg()[0], 2),
        "calibration_ms": calibrate(),
    }


async def bench(args: argparse.Namespace, server: Server | None, host: str, port: int) -> dict:
    """The phases against one server (the started one, or --url's)."""
    start = time.monotonic()
    if server is not None:
        await server.ready()
    else:
        probe = RawConnection(host, port)
        try:
            r = await probe.request("GET", "/healthz")
        except TransportError as e:
            raise BenchError(f"no server at {args.url}: {e}") from None
        finally:
            await probe.close()
        if r.status != 200:
            raise BenchError(f"{args.url}/healthz answered {r.status}")
    procs = server.probe() if server is not None else None
    key = server.key if server is not None else args.key
    res: dict[str, Any] = {
        "setup": server.setup if server is not None else "external",
        "label": server.label if server is not None else "external",
        "stored": server.stored if server is not None else None,
        "description": server.describe() if server is not None else f"http://{host}:{port}",
        "auth": "API key" if key else "none",
        "notes": [],
    }
    clients = Clients(args.client, host, port, args.concurrency, key)
    notes = res["notes"]
    profiler = Profiler(args, server, res)

    def remember(phase: str) -> None:
        if (mem := memory_snapshot(procs)) is not None:
            res.setdefault("memory", {})[phase] = mem

    remember("start")
    try:
        if "a" in args.only:
            await profiler.start("a")
            a = res["sync"] = await phase_sync(
                clients, args.requests, args.warmup, procs, BUDGET["a"]
            )
            await profiler.stop("a", a["sent"] + args.warmup, a["sent"] + args.warmup)
            remember("a")
            if a["sent"] < a["requests"]:
                notes.append(f"a: {a['sent']} of {a['requests']} sent in {BUDGET['a']:g}s")
        if "b" in args.only:
            await profiler.start("b")
            b = res["throughput"] = await phase_throughput(
                clients, args.runs, args.concurrency, procs, BUDGET["b"]
            )
            await profiler.stop("b", b["submitted"], b["submitted"] - b["not_succeeded"])
            remember("b")
            if b["not_submitted"]:
                notes.append(
                    f"b: {b['submitted']} of {b['runs']} runs submitted within the "
                    f"{BUDGET['b'] * SUBMIT_SHARE:g}s sending budget; the rate is over those"
                )
            if not b["drained"]:
                notes.append(f"b: runs still active after the {BUDGET['b']:g}s budget")
        if "c" in args.only:
            await profiler.start("c")
            c = res["accept"] = await phase_accept(
                clients, args.accepts, args.concurrency, procs, BUDGET["c"]
            )
            await profiler.stop("c", c["sent"], c["accepted"])
            remember("c")
            if c["sent"] < c["requests"]:
                notes.append(
                    f"c: {c['sent']} of {c['requests']} requests sent within the "
                    f"{BUDGET['c'] * SUBMIT_SHARE:g}s sending budget; the rate is over those"
                )
            if not c["drained"]:
                notes.append(
                    f"c: runs still queued after the {BUDGET['c']:g}s budget; "
                    "the server was stopped with them queued"
                )
        if "d" in args.only:
            await profiler.start("d")
            d = res["listing"] = await phase_listing(clients, args.listings, procs, BUDGET["d"])
            listed = sum(k["ok"] + k["errors"] for k in d["kinds"].values())
            await profiler.stop("d", listed, 0)
            remember("d")
            for k in d["kinds"].values():
                if k["ok"] + k["errors"] < args.listings:
                    notes.append(
                        f"d: {k['label']}: {k['ok'] + k['errors']} of {args.listings} requests "
                        f"within its {BUDGET['d'] / len(LISTINGS):g}s share of the budget"
                    )
        if args.soak:
            budget = soak_budget(args.soak)
            s = res["soak"] = await phase_soak(
                clients, args.soak, args.concurrency, procs, budget, args.soak_sample
            )
            if s["sent"] < s["runs"]:
                notes.append(
                    f"soak: {s['sent']:,} of {s['runs']:,} runs submitted within its "
                    f"{budget:g}s budget; the memory figures are after those"
                )
            if not s["drained"]:
                notes.append("soak: runs still queued at the end")
    finally:
        await profiler.abort()
        await clients.close()
    res["elapsed_s"] = round(time.monotonic() - start, 1)
    return res


# --profile: how many times a setup's phase was recorded (--rounds), for the file names.
_PROFILED: dict[str, int] = {}


class Profiler:
    """--profile DIR: py-spy on the server (and the processes below it) and on celery's
    workers during each phase; the summary of each phase goes to res["profile"][phase].
    Does nothing without --profile; says why when py-spy is absent."""

    def __init__(self, args: argparse.Namespace, server: Server | None, res: dict) -> None:
        self.dir = Path(args.profile) if getattr(args, "profile", None) else None
        self.server = server
        self.res = res
        self.rec: profiles.Recording | None = None
        self.exe: str | None = None
        self.stem_now = ""
        if self.dir is None or server is None:
            return
        self.exe = profiles.py_spy()
        if self.exe is None:
            res["profile"] = {"skipped": "py-spy not installed (pip install py-spy)"}
        else:
            res["profile"] = {}

    def stem(self, phase: str) -> str:
        assert self.server is not None
        name = self.server.setup
        if self.server.stored is not None:
            name += f"@{self.server.stored}"
        stem = f"{name}-{phase}"
        _PROFILED[stem] = _PROFILED.get(stem, 0) + 1
        return stem if _PROFILED[stem] == 1 else f"{stem}-round{_PROFILED[stem]}"

    async def start(self, phase: str) -> None:
        if self.exe is None or self.dir is None or self.server is None:
            return
        assert self.server.proc is not None
        self.stem_now = self.stem(phase)
        self.rec = await asyncio.to_thread(
            profiles.start,
            self.exe,
            self.dir,
            self.stem_now,
            self.server.proc.pid,
            [w.pid for w in self.server.worker_procs],
        )

    async def stop(self, phase: str, requests: int, runs: int) -> None:
        rec, self.rec = self.rec, None
        if rec is None:
            return
        errors = await asyncio.to_thread(rec.stop)
        files = [(path, i == 0) for i, (_, path) in enumerate(rec.procs)]
        summary = await asyncio.to_thread(profiles.summarise, files)
        summary.update(
            files=[str(p) for p, _ in files if p.exists()],
            requests=requests,
            runs=runs,
            errors=errors,
        )
        self.res["profile"][phase] = summary

    async def abort(self) -> None:
        """A phase that failed: stop its recording, keep no summary."""
        rec, self.rec = self.rec, None
        if rec is not None:
            await asyncio.to_thread(rec.stop)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def loop_runner(args: argparse.Namespace) -> Callable[[Awaitable[Any]], Any]:
    """asyncio.run, on uvloop for the raw client when it is installed."""
    with contextlib.suppress(ImportError):
        import uvloop

        if args.client == "raw":
            return uvloop.run
    return asyncio.run


def measure_setup(
    args: argparse.Namespace,
    name: str,
    host: str,
    port: int,
    stored: int | None = None,
    templates: Any = None,
) -> tuple[dict[str, Any], bool]:
    """One column's measurement: start the setup's server (unless --url), run the phases,
    stop it. (result, whether it failed)."""
    run = loop_runner(args)
    server = (
        None
        if args.url
        else Server(
            port, args.workers, name, args.broker, stored, templates, celery_pool=args.celery_pool
        )
    )
    failed = False
    try:
        if server is not None:
            print(f"bench: {server.label} ...", file=sys.stderr, flush=True)
            server.prepare()
            server.start()
        res = run(asyncio.wait_for(bench(args, server, host, port), args.timeout))
    except Skip as e:
        res = {"setup": name, "skipped": str(e)}
        if server is not None:
            res.update(label=server.label, stored=stored, description=server.describe())
    except (BenchError, TimeoutError) as e:
        msg = str(e) or f"timeout of {args.timeout:g}s reached"
        if server is not None and "\n---" not in msg:
            msg += "\n" + server.tail()
        label = server.label if server is not None else name
        print(f"bench: {label}: {msg}", file=sys.stderr)
        res = {"setup": name, "label": label, "stored": stored, "error": msg.splitlines()[0]}
        failed = True
    finally:
        if server is not None:
            server.stop()
    return res, failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        host, port = target_of(args)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    # SIGTERM (and SIGHUP) stop the bench as Ctrl-C does: the servers and workers it
    # started are stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupted)
    with contextlib.suppress(ValueError, AttributeError):
        signal.signal(signal.SIGHUP, _interrupted)
    setups = ["external"] if args.url else args.setups
    # The columns, in the order measured: each setup (at each stored size), round by round.
    sizes: list[int | None] = list(args.stored) if args.stored else [None]
    plan = [(name, n) for _ in range(args.rounds) for n in sizes for name in setups]
    templates = None
    if args.stored:
        from stored import Templates

        templates = Templates(PG_ADMIN_URL, say=lambda text: print(text, file=sys.stderr))

    # Last resort if the event loop itself is stuck: kill what was started and leave. Each
    # setup may take --timeout plus its start (a minute at most) and stop (half a minute);
    # a stored database may take 10 minutes to fill, once per size.
    def watchdog() -> None:
        print("bench: global timeout reached; stopping", file=sys.stderr)
        kill_everything()
        os._exit(3)

    fills = 600 * len(args.stored or []) * len(setups)
    timer = threading.Timer((args.timeout + 100) * len(plan) + fills + 15, watchdog)
    timer.daemon = True
    timer.start()
    report: dict[str, Any] = {"environment": environment(args), "setups": []}
    failed = False
    try:
        for name, n in plan:
            res, bad = measure_setup(args, name, host, port, n, templates)
            failed = failed or bad
            report["setups"].append(res)
    except KeyboardInterrupt:
        kill_everything()
        for server in list(_LIVE):
            server.stop()
        return 130
    finally:
        timer.cancel()
        if templates is not None:
            report["fill"] = [
                f"{kind} {n:,} runs in {secs:.0f}s" for (kind, n), secs in templates.fill_s.items()
            ]
            templates.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    missed = any(r[4] == "MISS" for res in report["setups"] for r in table_rows(res))
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
