"""jobport beside a Celery + Redis no-op baseline, measured in the same invocation.

`make bench-compare` = `.venv/bin/python bench/compare.py`: for each of `--rounds` rounds
(3), jobport's sqlite+local setup of bench/run.py (`jobport serve --demo`, a fresh SQLite
file, the local pool of `--workers` processes; phases a, b and c), then the baseline of
bench/celery_baseline.py (one Celery worker, prefork concurrency `--workers`, Redis, no
result backend): alternating, so that a change of the machine's load hits both. Then one
table: each round's figure per side, and the ratio of the means.

The baseline has no HTTP API: its "round trip" is `apply_async` then BLPOP on the key the
task pushes to, its throughput that of tasks published from this process; row c has no
counterpart. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import threading
from typing import Any

import celery_baseline
import run

# The rows: label, jobport's (phase, field), the baseline's (phase, field or None), unit.
ROWS = (
    ("a sync round trip, median", ("sync", "median_ms"), ("sync", "median_ms"), "ms"),
    ("a sync round trip, p99", ("sync", "p99_ms"), ("sync", "p99_ms"), "ms"),
    ("b end-to-end throughput", ("throughput", "runs_per_s"), ("throughput", "runs_per_s"),
     "runs/s"),
    ("c accepted execute requests", ("accept", "accepted_per_s"), None, "req/s"),
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    p.add_argument("--requests", type=int, default=500, help="a: round trips (500)")
    p.add_argument("--warmup", type=int, default=20, help="a: unmeasured round trips first (20)")
    p.add_argument("--runs", type=int, default=2000, help="b: runs / tasks end to end (2000)")
    p.add_argument("--accepts", type=int, default=5000, help="c: jobport's requests (5000)")
    p.add_argument("--concurrency", type=int, default=32, help="b, c: jobport's in flight (32)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="jobport's local pool processes = the baseline's prefork concurrency (2)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def fmt(value: float, unit: str) -> str:
    return f"{value:.1f}" if unit == "ms" else f"{value:.0f}"


def table(results: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> list[list[str]]:
    out = [["measure", "jobport sqlite+local", "celery+redis", "jobport / celery (means)"]]
    for label, ours, theirs, unit in ROWS:
        mine = [r[ours[0]][ours[1]] for r in results if ours[0] in r]
        other = [b[theirs[0]][theirs[1]] for b in baselines if theirs and theirs[0] in b]
        ratio = ""
        if mine and other and statistics.mean(other) > 0:
            ratio = f"{statistics.mean(mine) / statistics.mean(other):.2f}"
        out.append([
            label,
            f"{', '.join(fmt(v, unit) for v in mine)} {unit}" if mine else "-",
            f"{', '.join(fmt(v, unit) for v in other)} {unit}" if other else "- (no HTTP API)",
            ratio,
        ])  # fmt: skip
    bad = [
        r.get("sync", {}).get("errors", 0)
        + r.get("throughput", {}).get("not_succeeded", 0)
        + r.get("accept", {}).get("errors", 0)
        for r in results
    ]
    lost = [
        b.get("sync", {}).get("lost", 0)
        + (b["throughput"]["runs"] - b["throughput"]["done"] if "throughput" in b else 0)
        for b in baselines
    ]
    joined = ", ".join(map(str, bad)), ", ".join(map(str, lost))
    out.append(["errors, runs lost or not succeeded", *joined, ""])
    return out


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for i, row in enumerate(rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print(line)
    print(line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, run._interrupted)
    run_args = run.parse_args(
        [
            "--setups", "sqlite+local", "--only", "abc", "--workers", str(args.workers),
            "--requests", str(args.requests), "--warmup", str(args.warmup),
            "--runs", str(args.runs), "--accepts", str(args.accepts),
            "--concurrency", str(args.concurrency),
        ]
    )  # fmt: skip

    def watchdog() -> None:
        print("compare: global timeout reached; stopping", file=sys.stderr)
        run.kill_everything()
        os._exit(3)

    timer = threading.Timer((run_args.timeout + 220) * args.rounds + 15, watchdog)
    timer.daemon = True
    timer.start()
    env = run.environment(run_args)
    env["loadavg_before"] = os.getloadavg()
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    failed = False
    try:
        for i in range(args.rounds):
            print(f"compare: round {i + 1} of {args.rounds}", file=sys.stderr, flush=True)
            res, bad = run.measure_setup(run_args, "sqlite+local", "127.0.0.1", run.free_port())
            failed = failed or bad
            ours.append(res)
            print("bench: celery+redis ...", file=sys.stderr, flush=True)
            try:
                theirs.append(
                    celery_baseline.measure(args.workers, args.runs, args.requests, args.warmup)
                )
            except Exception as e:  # the broker absent, a worker that does not start
                print(f"compare: celery+redis: {e}", file=sys.stderr)
                theirs.append({"setup": "celery+redis", "error": str(e).splitlines()[0]})
                failed = True
    except KeyboardInterrupt:
        run.kill_everything()
        return 130
    finally:
        timer.cancel()
    env["loadavg_after"] = os.getloadavg()
    if args.json:
        print(json.dumps({"environment": env, "jobport": ours, "celery": theirs}, default=str))
        return 1 if failed else 0
    print(
        f"\njobport vs Celery  {env['date']}  commit={env['commit']}  nproc={env['nproc']}  "
        f"workers={args.workers}  rounds={args.rounds}  load average before "
        f"{env['loadavg_before'][0]:.2f}, after {env['loadavg_after'][0]:.2f}"
    )
    print_table(table(ours, theirs))
    described = next((b["description"] for b in theirs if "description" in b), "")
    print(f"jobport: {ours[0].get('description', '')}, phases of bench/run.py")
    print(f"celery+redis: {described}")
    for res in ours:
        if "error" in res:
            print(f"  jobport FAILED: {res['error']}")
    for b in theirs:
        if "error" in b:
            print(f"  celery FAILED: {b['error']}")
        elif t := b.get("throughput"):
            print(
                f"  celery b: published {t['runs']} in {t['publish_s']:.2f}s "
                f"({t['publish_per_s']:.0f}/s), last ended after {t['span_s']:.2f}s; "
                f"cpu {run.cpu_text(t['cpu_percent'])}; a: cpu "
                f"{run.cpu_text(b['sync']['cpu_percent'])}"
            )
    with contextlib.suppress(Exception):
        for res in ours:
            if b := res.get("throughput"):
                print(
                    f"  jobport b: cpu over the span {run.cpu_text(b['cpu_percent'])}; a: cpu "
                    f"{run.cpu_text(res['sync']['cpu_percent'])}"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
