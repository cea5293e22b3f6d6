"""Iteration benchmark: a foreach run of 10,000 no-op items through a real server.

It starts `jobport serve --demo` (bench/run.py's Server: a fresh SQLite database, an
Administrator key), creates a job whose `foreach` lists `--items` items and whose one step
is the demo's no-op Python callable, executes it once per `--concurrency` value and waits
for the end. Reported per run: the items, how many succeeded, the seconds from the run's
start to its end as the server recorded them (startedAt → finishedAt: resolving and storing
the items, running each, writing each item's end and its log lines), items/s, the log
lines written, and the CPU of the server and its workers (100% = one core).

Target: 10,000 items at 500 items/s or more on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Server, cpu_percent, cpu_snapshot, free_port

TARGET_ITEMS_PER_S = 500.0


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def measure(api: httpx2.Client, server_pid: int, items: int, concurrency: int) -> dict[str, Any]:
    name = f"noop-items-{concurrency}"
    job = {
        "name": name,
        "foreach": {"source": {"items": list(range(items))}, "concurrency": concurrency},
        "steps": [{"name": "noop", "kind": "python", "config": {"callable": "jobport.demo:noop"}}],
    }
    response = api.post("/api/v1/projects/demo/jobs", json=job)
    response.raise_for_status()
    before = cpu_snapshot(server_pid)
    began = time.monotonic()
    run = api.post(f"/api/v1/projects/demo/jobs/{name}/execute").json()
    while True:
        now = api.get(f"/api/v1/executions/{run['id']}").json()
        if now["status"] not in ("queued", "running", "cancelling"):
            break
        time.sleep(0.05)
    wall = time.monotonic() - began
    cpu = cpu_percent(before, cpu_snapshot(server_pid), wall)
    seconds = _ts(now["finishedAt"]) - _ts(now["startedAt"])
    summary = now["iteration"] or {}
    return {
        "concurrency": concurrency,
        "items": items,
        "status": now["status"],
        "succeeded": summary.get("succeeded", 0),
        "seconds": seconds,
        "items_per_s": summary.get("succeeded", 0) / seconds if seconds > 0 else 0.0,
        "log_lines": now["logLines"],
        "cpu": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    server = Server(free_port(), args.workers)
    rows = []
    try:
        server.start()
        import asyncio

        asyncio.run(server.wait_healthy())
        assert server.proc is not None
        headers = {"Authorization": f"Bearer {server.key}"}
        with httpx2.Client(
            base_url=f"http://127.0.0.1:{server.port}", headers=headers, timeout=60
        ) as api:
            for concurrency in args.concurrency:
                rows.append(measure(api, server.proc.pid, args.items, concurrency))
    finally:
        server.stop()
    print(f"foreach of {args.items:,} no-op items, SQLite, {args.workers} worker processes")
    print(
        f"{'concurrency':>11} {'status':>10} {'succeeded':>9} {'seconds':>8} {'items/s':>8} "
        f"{'log lines':>9} {'cpu server/workers':>18} {'target':>8}"
    )
    ok = True
    for r in rows:
        passed = r["succeeded"] == r["items"] and r["items_per_s"] >= TARGET_ITEMS_PER_S
        ok = ok and passed
        cpu = f"{r['cpu'].get('server', 0)}% / {r['cpu'].get('workers', 0)}%"
        print(
            f"{r['concurrency']:>11} {r['status']:>10} {r['succeeded']:>9,} "
            f"{r['seconds']:>8.2f} {r['items_per_s']:>8,.0f} {r['log_lines']:>9,} "
            f"{cpu:>18} {'PASS' if passed else 'MISS':>8}"
        )
    print(f"target: every item succeeded, >= {TARGET_ITEMS_PER_S:,.0f} items/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
