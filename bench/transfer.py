"""Transfer benchmark: the `transfer` step copying 1,000,000 rows of 5 columns.

It makes a source table `orders (id INTEGER PRIMARY KEY, customer VARCHAR(40), amount
NUMERIC(12,2), quantity INTEGER, updated_at TIMESTAMP)` with `--rows` rows, then runs the
real step (jobport.engine.steps.transfer.run, batchSize `--batch`) in this process, as a
worker runs it, into a target table it creates: a `full` run into an absent target, then a
`delta` run above the watermark the full run saw, after `--changed` source rows were
updated. Pairs measured: SQLite file to SQLite file (target: under 30 s, under 200 MB), and
PostgreSQL to PostgreSQL (two throwaway databases on --pg, skipped if unreachable).

Reported per run: seconds, rows/s, rows read and written, and this process's peak RSS
(VmHWM of /proc/self/status: the seeding of the source runs in the database or streams from
a generator, so the peak is the step's).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from jobport.domain.connections import Resolved
from jobport.engine.steps import StepContext, transfer

TARGET_SECONDS = 30.0
TARGET_MIB = 200.0
START = dt.datetime(2026, 1, 1)


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_sqlite(path: Path, rows: int) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(40), "
            "amount NUMERIC(12,2), quantity INTEGER, updated_at TIMESTAMP)"
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            (
                (
                    i,
                    f"customer {i % 5000}",
                    (i % 100000) / 100,
                    i % 50,
                    (START + dt.timedelta(seconds=i)).isoformat(" "),
                )
                for i in range(1, rows + 1)
            ),
        )
        conn.commit()


def change_sqlite(path: Path, changed: int) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "UPDATE orders SET quantity = quantity + 1, updated_at = '2027-01-01 00:00:00' "
            "WHERE id % (SELECT max(1, count(*) / ?) FROM orders) = 0",
            (changed,),
        )
        conn.commit()


def seed_postgres(url: str, rows: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(40), "
                "amount NUMERIC(12,2), quantity INTEGER, updated_at TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO orders SELECT i, 'customer ' || (i % 5000), (i % 100000) / 100.0,"
                " i % 50, timestamp '2026-01-01' + i * interval '1 second'"
                " FROM generate_series(1, :rows) AS i"
            ),
            {"rows": rows},
        )
    engine.dispose()


def change_postgres(url: str, changed: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE orders SET quantity = quantity + 1, updated_at = '2027-01-01' "
                "WHERE id % greatest(1, (SELECT count(*) FROM orders) / :n) = 0"
            ),
            {"n": changed},
        )
    engine.dispose()


def run_step(source: str, target: str, mode: str, watermark: Any, batch: int) -> dict[str, Any]:
    urls = {"src": source, "dst": target}
    lines: list[str] = []
    ctx = StepContext(
        "bench",
        "copy",
        lambda stream, line: lines.append(line),
        threading.Event(),
        1.0,
        log_lines=lambda stream, texts: lines.extend(texts),
        mode=mode,
        connection=lambda name: Resolved(name, "sql", urls[name], {}),
        watermark=lambda: watermark,
    )
    config = {
        "source": {"connection": "src", "table": "orders"},
        "target": {"connection": "dst", "table": "orders_copy"},
        "primaryKey": ["id"],
        "watermark": "updated_at",
        "batchSize": batch,
    }
    transfer.validate(config)
    started = time.monotonic()
    result = transfer.run(config, ctx)
    result["elapsed"] = time.monotonic() - started
    result["logLines"] = len(lines)
    return result


@contextlib.contextmanager
def postgres_pair(admin_url: str) -> Iterator[tuple[str, str]]:
    import psycopg

    names = [f"jobport_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(pair: str, source: str, target: str, args: argparse.Namespace, change: Any) -> list:
    rows = []
    full = run_step(source, target, "full", None, args.batch)
    rows.append((pair, "full", full, peak_mib()))
    change(args.changed)
    delta = run_step(source, target, "delta", full["watermarkAfter"], args.batch)
    rows.append((pair, "delta", delta, peak_mib()))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--changed", type=int, default=10_000, help="rows a delta run moves")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "JOBPORT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results: list = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="jobport-bench-transfer-") as folder:
            src, dst = Path(folder) / "source.db", Path(folder) / "target.db"
            seed_sqlite(src, args.rows)
            results += measure(
                "sqlite -> sqlite",
                f"sqlite:///{src}",
                f"sqlite:///{dst}",
                args,
                lambda n: change_sqlite(src, n),
            )
    if args.only in (None, "postgresql"):
        try:
            with postgres_pair(args.pg) as (src, dst):
                seed_postgres(src, args.rows)
                results += measure(
                    "postgresql -> postgresql", src, dst, args, lambda n: change_postgres(src, n)
                )
        except Exception as exc:  # no server: say so, measure the rest
            print(f"postgresql skipped: {type(exc).__name__}: {exc}", file=sys.stderr)

    figures = [
        {
            "pair": pair,
            "mode": mode,
            "rowsRead": r["rowsRead"],
            "rowsWritten": r["rowsWritten"],
            "seconds": round(r["elapsed"], 2),
            "rowsPerSecond": round(r["rowsRead"] / r["elapsed"]) if r["elapsed"] else None,
            "peakRssMiB": round(peak, 1),
        }
        for pair, mode, r, peak in results
    ]
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"transfer of {args.rows:,} rows x 5 columns, batchSize {args.batch}, "
        f"delta after {args.changed:,} changed rows"
    )
    header = f"{'pair':<26}{'mode':<7}{'read':>10}{'written':>10}{'seconds':>9}"
    print(header + f"{'rows/s':>10}{'peak RSS':>11}  target")
    for f in figures:
        target = ""
        if f["pair"].startswith("sqlite") and f["mode"] == "full":
            ok = f["seconds"] < TARGET_SECONDS and f["peakRssMiB"] < TARGET_MIB
            target = f"< {TARGET_SECONDS:g} s, < {TARGET_MIB:g} MB  {'PASS' if ok else 'MISS'}"
        print(
            f"{f['pair']:<26}{f['mode']:<7}{f['rowsRead']:>10,}{f['rowsWritten']:>10,}"
            f"{f['seconds']:>9.2f}{f['rowsPerSecond'] or 0:>10,}"
            f"{f['peakRssMiB']:>8.1f} MB  {target}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
