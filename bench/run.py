"""jobport benchmark: synchronous round trip, end-to-end throughput, accepted requests/s.

With no arguments it starts a real server (`jobport serve --demo`) on a free loopback
port with a fresh SQLite database, measures the demo project's `noop` job (one no-op
Python step) and prints a table with the target and PASS/MISS per row:

  a) sync round trip   N sequential `POST .../execute?wait=30` on one keep-alive connection
  b) throughput        M `POST .../execute` (202) with concurrency, until all have ended
  c) accepted req/s    K `POST .../execute` with concurrency; the runs drain afterwards

Every request carries an API key (`Authorization: Bearer jpk_...`) of an Administrator, as
a real client's would: the bench measures authentication too. Traffic goes to 127.0.0.1
only. The whole run is bounded by --timeout; the server is always stopped at the end.
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
BUDGET = {"a": 30.0, "b": 55.0, "c": 50.0}
SUBMIT_SHARE = 0.6

TARGETS = {
    "sync_median_ms": 10.0,
    "sync_p99_ms": 50.0,
    "runs_per_s": 500.0,
    "accepted_per_s": 1000.0,
}


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

    async def request(self, method: str, path: str) -> Response:
        try:
            if self._writer is None:
                await self._connect()
            assert self._reader is not None and self._writer is not None
            self._writer.write(self._head(method, path))
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


def cpu_snapshot(server_pid: int | None) -> dict[str, float]:
    """Seconds of CPU so far: this client, the server process, its descendants (workers)."""
    snap = {"client": time.process_time()}
    if server_pid is None:
        return snap
    try:
        snap["server"] = _proc_cpu(server_pid)
        workers = 0.0
        stack = _children(server_pid)
        while stack:
            pid = stack.pop()
            with contextlib.suppress(OSError):
                workers += _proc_cpu(pid)
                stack.extend(_children(pid))
        snap["workers"] = workers
    except OSError:
        pass
    return snap


def cpu_percent(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, int]:
    # Workers replaced during the phase would make this negative; clamp.
    return {
        k: max(0, round(100 * (after[k] - before[k]) / wall))
        for k in after
        if k in before and wall > 0
    }


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
    server_pid: int | None,
    budget: float,
) -> Blast:
    """POST `path` `n` times over `concurrency` keep-alive connections, as fast as it goes.

    No request is started after `budget` seconds; `sent` then says how many went.
    """
    out = Blast()
    todo = iter(range(n))
    conns = [clients.connection() for _ in range(min(concurrency, n))]
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

    before = cpu_snapshot(server_pid)
    out.t_first = time.time()
    await asyncio.gather(*(lane(c) for c in conns))
    out.t_last = time.time()
    out.cpu = cpu_percent(before, cpu_snapshot(server_pid), out.t_last - out.t_first)
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
    clients: Clients, n: int, warmup: int, server_pid: int | None, budget: float
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
    before = cpu_snapshot(server_pid)
    t0 = time.time()
    stop_at = time.monotonic() + budget
    sent = 0
    for _ in range(n):
        if time.monotonic() > stop_at:
            break
        sent += 1
        await one(True)
    wall = time.time() - t0
    cpu = cpu_percent(before, cpu_snapshot(server_pid), wall)
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
    clients: Clients, runs: int, concurrency: int, server_pid: int | None, budget: float
) -> dict[str, Any]:
    deadline = time.monotonic() + budget
    poll = clients.connection()
    before = cpu_snapshot(server_pid)
    sent = await blast(clients, runs, concurrency, EXECUTE, server_pid, budget * SUBMIT_SHARE)
    drained, seen_at = await drain(poll, sent.ids[-1] if sent.ids else None, deadline)
    cpu = cpu_percent(before, cpu_snapshot(server_pid), seen_at - sent.t_first)
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
    clients: Clients, n: int, concurrency: int, server_pid: int | None, budget: float
) -> dict[str, Any]:
    deadline = time.monotonic() + budget
    sent = await blast(clients, n, concurrency, EXECUTE, server_pid, budget * SUBMIT_SHARE)
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


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`jobport serve --demo` as a child process with a fresh SQLite database."""

    def __init__(self, port: int, workers: int) -> None:
        self.port = port
        self.workers = workers
        self.tmp = tempfile.TemporaryDirectory(prefix="jobport-bench-")
        self.db_path = Path(self.tmp.name) / "bench.db"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self.tmp.name) / "server.log"
        self.key: str | None = None

    def make_key(self) -> str:
        """An Administrator API key, made in the fresh database before the server starts."""
        from jobport.domain.access import key_string
        from jobport.services import access
        from jobport.services.runtime import Runtime
        from jobport.settings import Settings
        from jobport.store.db import Database

        url = f"sqlite:///{self.db_path}"
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

    def start(self) -> None:
        self.key = self.make_key()
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPORT_")}
        env["JOBPORT_DATABASE_URL"] = f"sqlite:///{self.db_path}"
        cmd = [
            sys.executable,
            "-m",
            "jobport.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--demo",
            "--log-level",
            "warning",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        # cwd: the temp dir, so that no ./jobport.toml of the caller changes the settings.
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=self.tmp.name, stdout=self._log, stderr=subprocess.STDOUT
        )

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

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn: graceful shutdown, workers stopped
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(Exception):
            self._log.close()
        self.tmp.cleanup()


# -- output -------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def table_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    if a := res.get("sync"):
        n = a["ok"]
        rows += [
            (f"a  sync round trip, median (n={n})", f"{a['median_ms']:.1f} ms", "<= 10 ms",
             verdict(a["median_ms"] <= TARGETS["sync_median_ms"] and a["errors"] == 0)),
            ("a  sync round trip, p90", f"{a['p90_ms']:.1f} ms", "", ""),
            ("a  sync round trip, p99", f"{a['p99_ms']:.1f} ms", "<= 50 ms",
             verdict(a["p99_ms"] <= TARGETS["sync_p99_ms"] and a["errors"] == 0)),
            ("a  sync round trip, max", f"{a['max_ms']:.1f} ms", "", ""),
            ("a  sync errors (non-200 or not succeeded)", str(a["errors"]), "0",
             verdict(a["errors"] == 0)),
        ]  # fmt: skip
    if b := res.get("throughput"):
        rows += [
            (f"b  end-to-end throughput ({b['submitted']} of {b['runs']} runs)",
             f"{b['runs_per_s']:.0f} runs/s", ">= 500 runs/s",
             verdict(b["runs_per_s"] >= TARGETS["runs_per_s"])),
            (f"b  runs not succeeded (of {b['submitted']} submitted)", str(b["not_succeeded"]),
             "0", verdict(b["not_succeeded"] == 0)),
        ]  # fmt: skip
    if c := res.get("accept"):
        rows += [
            (f"c  accepted execute requests ({c['sent']} of {c['requests']})",
             f"{c['accepted_per_s']:.0f} req/s", ">= 1000 req/s",
             verdict(c["accepted_per_s"] >= TARGETS["accepted_per_s"])),
            ("c  errors (non-2xx + transport)", str(c["errors"]), "0", verdict(c["errors"] == 0)),
        ]  # fmt: skip
    return rows


def cpu_text(cpu: dict[str, int]) -> str:
    return "  ".join(f"{k} {v}%" for k, v in cpu.items())


def print_report(res: dict[str, Any]) -> None:
    env = res["environment"]
    print(
        f"\njobport bench  {env['date']}  nproc={env['nproc']}  python {env['python']}  "
        f"workers={env['workers']}  concurrency={env['concurrency']}  client={env['client']}  "
        f"commit={env['commit']}"
    )
    rows = table_rows(res)
    header = ("measure", "measured", "target", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(line)
    print("details (cpu: 100% = one core; client = this process, workers = all worker processes)")
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
    for note in res.get("notes", []):
        print(f"  note: {note}")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500, help="a: sync round trips (500)")
    p.add_argument("--warmup", type=int, default=20, help="a: unmeasured round trips first (20)")
    p.add_argument("--runs", type=int, default=2000, help="b: executions to run end to end (2000)")
    p.add_argument("--accepts", type=int, default=5000, help="c: execute requests to send (5000)")
    p.add_argument("--concurrency", type=int, default=32, help="b, c: requests in flight (32)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--url", help="use this running server (http://127.0.0.1:PORT) instead")
    p.add_argument(
        "--key",
        default=os.environ.get("JOBPORT_KEY"),
        help="API key for --url (default $JOBPORT_KEY); a started server gets its own key",
    )
    p.add_argument("--port", type=int, default=0, help="port for the started server (free one)")
    p.add_argument("--only", default="abc", help="phases to run, e.g. 'a' or 'bc' (abc)")
    p.add_argument("--client", choices=["raw", "httpx2"], default="raw", help="load generator")
    p.add_argument("--timeout", type=float, default=180.0, help="global limit in seconds (180)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 if any row is a MISS")
    args = p.parse_args(argv)
    if set(args.only) - set("abc") or not args.only:
        p.error("--only takes letters among a, b, c")
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


async def bench(args: argparse.Namespace, server: Server | None, host: str, port: int) -> dict:
    start = time.monotonic()
    server_pid = server.proc.pid if server is not None and server.proc is not None else None
    if server is not None:
        await server.wait_healthy()
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
    key = server.key if server is not None else args.key
    res: dict[str, Any] = {
        "environment": {
            "date": dt.date.today().isoformat(),
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "workers": args.workers if server is not None else "external",
            "concurrency": args.concurrency,
            "client": args.client,
            "auth": "API key" if key else "none",
            "url": f"http://{host}:{port}",
            "commit": git_commit(),
        },
        "notes": [],
    }
    clients = Clients(args.client, host, port, args.concurrency, key)
    notes = res["notes"]
    try:
        if "a" in args.only:
            a = res["sync"] = await phase_sync(
                clients, args.requests, args.warmup, server_pid, BUDGET["a"]
            )
            if a["sent"] < a["requests"]:
                notes.append(f"a: {a['sent']} of {a['requests']} sent in {BUDGET['a']:g}s")
        if "b" in args.only:
            b = res["throughput"] = await phase_throughput(
                clients, args.runs, args.concurrency, server_pid, BUDGET["b"]
            )
            if b["not_submitted"]:
                notes.append(
                    f"b: {b['submitted']} of {b['runs']} runs submitted within the "
                    f"{BUDGET['b'] * SUBMIT_SHARE:g}s sending budget; the rate is over those"
                )
            if not b["drained"]:
                notes.append(f"b: runs still active after the {BUDGET['b']:g}s budget")
        if "c" in args.only:
            c = res["accept"] = await phase_accept(
                clients, args.accepts, args.concurrency, server_pid, BUDGET["c"]
            )
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
    finally:
        await clients.close()
    res["elapsed_s"] = round(time.monotonic() - start, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        host, port = target_of(args)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    server = None if args.url else Server(port, args.workers)

    # Last resort if the event loop itself is stuck: stop the server and leave.
    def watchdog() -> None:
        print(f"bench: global timeout of {args.timeout:g}s reached; stopping", file=sys.stderr)
        if server is not None and server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
        os._exit(3)

    timer = threading.Timer(args.timeout + 15, watchdog)
    timer.daemon = True
    timer.start()
    run: Callable[[Awaitable[Any]], Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        if args.client == "raw":
            run = uvloop.run
    try:
        if server is not None:
            server.start()
        res = run(asyncio.wait_for(bench(args, server, host, port), args.timeout))
    except (BenchError, TimeoutError) as e:
        msg = str(e) or f"global timeout of {args.timeout:g}s reached"
        print(f"bench: {msg}", file=sys.stderr)
        if server is not None:
            server.stop()
        return 1
    except KeyboardInterrupt:
        if server is not None:
            server.stop()
        return 130
    if server is not None:
        server.stop()
    timer.cancel()
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print_report(res)
    missed = any(r[3] == "MISS" for r in table_rows(res))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
