"""Scheduler benchmark: 100,000 cron schedules on SQLite, fired for one 5-minute cycle.

It creates a fresh SQLite file with one project, `--jobs` jobs and `--schedules` enabled
schedules. Schedule i fires every 5 minutes at minute offset i % 5 and second (i // 5) % 60
(`f"{i % 5}-59/5 * * * * {second}"`, croniter's 6-field form with seconds last), so the
fires spread evenly over 300 one-second slots. Then it runs the real `Scheduler` loop, with
the real clock, in this process for `--seconds` (default 310: one full cycle and a margin).
There is no dispatcher or worker pool: each fire is recorded and its execution row is queued
in the store, exactly as `jobport scheduler` does it; nothing runs the executions.

Reported, over the fires due from the loop's start to 3 s before its stop:
  fires       recorded fires, and how many were due (every schedule's times in the window)
  lag         execution created_at minus its nominal fire time: p50, p99, max
  missed      due fire times with no started fire
  duplicated  executions beyond one per (schedule, fire time)
  RSS, CPU    of this process while the loop ran (100% = one core)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.domain.jobs import JobSpec
from jobport.domain.schedules import ScheduleSpec
from jobport.scheduler import Scheduler
from jobport.services.runtime import Runtime
from jobport.settings import Settings
from jobport.store.db import Database
from jobport.store.tables import executions, jobs, projects, schedule_fires, schedules

STEP = {"name": "main", "kind": "python", "config": {"callable": "jobport.demo:noop"}}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cron_of(i: int) -> str:
    return f"{i % 5}-59/5 * * * * {(i // 5) % 60}"


def create(db: Database, count: int, job_count: int, start: dt.datetime) -> None:
    """Insert the project, jobs and schedules in bulk, each with its first fire time."""
    now = utcnow()
    project = {"id": new_id(), "name": "bench", "description": "", "created_at": now}
    project["updated_at"] = now
    job_rows = []
    for j in range(job_count):
        spec = JobSpec.model_validate({"name": f"job-{j}", "steps": [STEP]}).wire()
        job_rows.append(
            {
                "id": new_id(),
                "project_id": project["id"],
                "name": f"job-{j}",
                "spec": spec,
                "created_at": now,
                "updated_at": now,
            }
        )
    first_fire: dict[str, dt.datetime] = {}
    specs: dict[str, dict[str, object]] = {}
    for slot in range(300):
        cron = cron_of(slot)
        spec = ScheduleSpec.model_validate({"crons": [cron], "overlapPolicy": "allow"})
        fire = spec.timetable().next_fire(start)
        assert fire is not None
        first_fire[cron], specs[cron] = fire.utc, spec.wire()
    rows = []
    for i in range(count):
        cron = cron_of(i)
        rows.append(
            {
                "id": new_id(),
                "project_id": project["id"],
                "job_id": job_rows[i % job_count]["id"],
                "name": f"s{i}",
                "spec": {**specs[cron], "name": f"s{i}"},
                "enabled": True,
                "next_fire_at": first_fire[cron],
                "last_fire_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    with db.write() as conn:
        conn.execute(insert(projects).values(**project))
        conn.execute(insert(jobs), job_rows)
        for offset in range(0, len(rows), 10_000):
            conn.execute(insert(schedules), rows[offset : offset + 10_000])


def expected_fires(count: int, start: dt.datetime, end: dt.datetime) -> int:
    """How many fires are due in (start, end] over all schedules."""
    total = 0
    for slot in range(300):
        per_slot = len(range(slot, count, 300))
        timetable = ScheduleSpec.model_validate({"crons": [cron_of(slot)]}).timetable()
        total += per_slot * len(timetable.fires_between(start, end))
    return total


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=310.0, help="how long the loop runs")
    parser.add_argument("--batch", type=int, default=None, help="due schedules per transaction")
    parser.add_argument("--db", help="SQLite file (default: a fresh one in a temporary dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.schedules < 1 or args.jobs < 1:
        parser.error("--schedules and --jobs must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="jobport-bench-schedules-"))
    path = Path(args.db) if args.db else workdir / "bench.db"
    if path.exists():
        parser.error(f"{path} exists; give a new file")
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    settings = Settings(database_url=db.url)
    if args.batch:
        settings = Settings(database_url=db.url, scheduler_batch_size=args.batch)

    began = time.monotonic()
    start = utcnow()
    create(db, args.schedules, args.jobs, start)
    setup = time.monotonic() - began
    print(
        f"created {args.schedules} schedules over {args.jobs} jobs in {setup:.1f}s", file=sys.stderr
    )

    scheduler = Scheduler(Runtime(settings, db))
    cpu_before = time.process_time()
    wall_before = time.monotonic()
    rss_peak = rss_mib()
    stop_sampling = threading.Event()

    def sample() -> None:
        nonlocal rss_peak
        while not stop_sampling.wait(1.0):
            rss_peak = max(rss_peak, rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # Fires that fell due while the schedules were being created are caught up at once:
    # they are not counted; the window opens when the loop starts.
    opened = utcnow()
    scheduler.start()
    time.sleep(args.seconds)
    scheduler.stop(timeout=60)
    stopped = utcnow()
    stop_sampling.set()
    cpu = (time.process_time() - cpu_before) / (time.monotonic() - wall_before) * 100
    # Until just before the stop: a fire due in the last instant may not have had its tick.
    window_end = stopped - dt.timedelta(seconds=3)

    with db.read() as conn:
        lags = [
            (r.created_at - r.schedule_fire_at).total_seconds()
            for r in conn.execute(
                select(executions.c.created_at, executions.c.schedule_fire_at).where(
                    executions.c.schedule_fire_at > opened,
                    executions.c.schedule_fire_at <= window_end,
                )
            )
        ]
        started = conn.execute(
            select(func.count())
            .select_from(schedule_fires)
            .where(
                schedule_fires.c.outcome == "started",
                schedule_fires.c.fire_at > opened,
                schedule_fires.c.fire_at <= window_end,
            )
        ).scalar_one()
        fires_total = conn.execute(select(func.count()).select_from(schedule_fires)).scalar_one()
        runs_total = conn.execute(select(func.count()).select_from(executions)).scalar_one()
        distinct_runs = conn.execute(
            select(func.count()).select_from(
                select(executions.c.schedule_id, executions.c.schedule_fire_at)
                .distinct()
                .subquery()
            )
        ).scalar_one()
    due = expected_fires(args.schedules, opened, window_end)
    figures = {
        "schedules": args.schedules,
        "seconds": round(args.seconds, 1),
        "fires due in window": due,
        "fires recorded (all)": fires_total,
        "p50 lag s": round(statistics.median(lags), 3) if lags else None,
        "p99 lag s": round(percentile(lags, 0.99), 3),
        "max lag s": round(max(lags), 3) if lags else None,
        "missed": due - started,
        "duplicated": runs_total - distinct_runs,
        "scheduler RSS MiB (peak)": round(rss_peak, 1),
        "scheduler CPU %": round(cpu, 1),
        "cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        targets = {"p99 lag s": "<= 1", "missed": "0", "duplicated": "0"}
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            target = targets.get(key, "")
            print(f"{key:<{width}}  {value!s:>10}  {target}")
    db.dispose()
    ok = figures["missed"] == 0 and figures["duplicated"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
