"""Stored runs for bench/run.py `--stored`: a database that already holds N ended executions.

`template(kind, n, cache)` makes (once per invocation, then reused) a migrated database with
the demo project, its jobs, FILLER_JOBS more jobs like `noop`, and `n` ended executions of
those jobs, each with LOG_LINES log lines, spread evenly over the SPAN_DAYS days before
now. Each server of the bench then starts on a copy: the SQLite file copied, or a
PostgreSQL database created from the template database (`CREATE DATABASE ... TEMPLATE`).

The rows go in with SQL in the database itself, a batch of runs and their log lines per
transaction: SQLite's `INSERT ... SELECT` from a recursive CTE, PostgreSQL's from
`generate_series`. The columns are those of store/tables.py; `check_columns` fails loudly
when a NOT NULL column without a default is added there and not here. What a run looks like:

- id: UUIDv7-shaped like domain/ids.new_id, its 48 bits of milliseconds those of its
  created_at, so ids sort as the runs were created (ids double as cursors); object_id is
  domain/ids.object_id of it (SHA-256, in SQL on PostgreSQL, a Python function on SQLite).
- job: run i belongs to job (i * 7919) % jobs, so every job has about n / jobs runs,
  interleaved in time.
- status: out of 1,000 runs 940 succeeded, 50 failed (step_failed), 9 cancelled and 1
  timed_out, spread by a hash of i; error_code and error_message as the engine writes them.
- times: created_at = not_before; started 3 ms later; finished 40 to 1,039 ms after that;
  one step, started and finished within the run. The newest run was created an hour before
  the fill, the oldest SPAN_DAYS before it.
- logs: LOG_LINES lines: the step's `started` system line, LOG_LINES - 2 stdout lines of
  about 40 characters, the step's `succeeded`/`failed` system line, 1 ms apart.

On SQLite nothing runs ANALYZE: jobport does not either, so the query plans are those a
server has. On PostgreSQL the fill ends with VACUUM (ANALYZE), as autovacuum would soon.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

FILLER_JOBS = 100
LOG_LINES = 20
SPAN_DAYS = 90
BATCH = 100_000  # runs per transaction (and their log lines)
PRINCIPAL = "apiKey:benchfill"

# The columns the fill writes; every other column of `executions` must be nullable or have
# a default (check_columns).
RUN_COLUMNS = (
    "id", "project_id", "job_id", "job_name", "status", "trigger", "parameters", "mode",
    "principal", "attempt", "spec", "steps", "result", "error_code", "error_message",
    "worker", "created_at", "not_before", "started_at", "finished_at", "heartbeat_at",
    "log_lines", "log_bytes", "object_id", "context", "iteration",
)  # fmt: skip
LOG_COLUMNS = ("execution_id", "seq", "at", "step", "stream", "level", "text")


def check_columns() -> None:
    """Fail if store/tables.py gained a column the fill must write."""
    from jobport.store.tables import execution_logs, executions

    for table, written in ((executions, RUN_COLUMNS), (execution_logs, LOG_COLUMNS)):
        for column in table.columns:
            if column.name in written:
                continue
            if not column.nullable and column.default is None and column.server_default is None:
                raise RuntimeError(
                    f"bench/stored.py does not fill {table.name}.{column.name} (NOT NULL): "
                    "add it to the fill"
                )
        missing = set(written) - {c.name for c in table.columns}
        if missing:
            raise RuntimeError(f"bench/stored.py fills unknown columns {sorted(missing)}")


def seed(database_url: str, scratch: Path) -> None:
    """Migrate, and create the demo project, its jobs and FILLER_JOBS copies of `noop`."""
    from jobport.demo import DATA_JOBS, DEMO_JOBS
    from jobport.errors import Conflict
    from jobport.services import jobs as job_service
    from jobport.services import projects as project_service
    from jobport.services.runtime import Runtime
    from jobport.settings import Settings
    from jobport.store.db import Database

    db = Database(database_url, pool=False)
    try:
        db.upgrade()
        rt = Runtime(Settings(database_url=database_url), db)
        with contextlib.chdir(scratch):  # anything a service writes to ./ stays in scratch
            project, _ = project_service.ensure(rt, "demo", "Demo jobs seeded by `make run`.")
            noop = next(j for j in DEMO_JOBS if j["name"] == "noop")
            fillers = [
                {**noop, "name": f"filler-{k:03d}", "description": "bench/stored.py"}
                for k in range(FILLER_JOBS)
            ]
            for job in [*DEMO_JOBS, *DATA_JOBS, *fillers]:
                with contextlib.suppress(Conflict):
                    job_service.create(rt, project.id, job)
    finally:
        db.dispose()


def _first_ms() -> tuple[int, int]:
    """(ms of the oldest run, ms between runs is computed by the caller): the window ends
    an hour before now."""
    end = int(time.time() * 1000) - 3_600_000
    return end - SPAN_DAYS * 86_400_000, end


def _object_id(native_id: str) -> str:
    return hashlib.sha256(native_id.encode()).hexdigest()[:24]


# The parts both dialects share. {ms}: the run's created_at in ms since the epoch; {i}: its
# number; {h}: a hash of i in 0..999 that picks the status; {dur}: ms the step ran.
STATUS = (
    "CASE WHEN {h} < 1 THEN 'timed_out' WHEN {h} < 10 THEN 'cancelled' "
    "WHEN {h} < 60 THEN 'failed' ELSE 'succeeded' END"
)
ERROR_CODE = (
    "CASE WHEN {h} < 1 THEN 'timed_out' WHEN {h} < 10 THEN 'cancelled' "
    "WHEN {h} < 60 THEN 'step_failed' END"
)
ERROR_MESSAGE = (
    "CASE WHEN {h} < 1 THEN 'the run took longer than its timeout of 60 s' "
    "WHEN {h} < 10 THEN 'cancelled by " + PRINCIPAL + "' "
    "WHEN {h} < 60 THEN 'step ''' || {step} || ''' failed: exit code 1' END"
)
STEP_STATUS = (
    "CASE WHEN {h} < 1 THEN 'timed_out' WHEN {h} < 10 THEN 'cancelled' "
    "WHEN {h} < 60 THEN 'failed' ELSE 'succeeded' END"
)


def _sqlite_sql(project_id: str, jobs: int) -> tuple[str, str]:
    def ts(ms: str) -> str:  # '2026-11-30 19:35:34.805000', as SQLAlchemy stores it
        return f"(strftime('%Y-%m-%d %H:%M:%f', ({ms}) / 1000.0, 'unixepoch') || '000')"

    def iso(ms: str) -> str:  # '2026-11-30T19:35:34.805Z', as the API renders it
        return f"strftime('%Y-%m-%dT%H:%M:%fZ', ({ms}) / 1000.0, 'unixepoch')"

    h, step = "r.h", "j.step"
    fmt = {"h": h, "step": step}
    status = STATUS.format(**fmt)
    started, finished = "(r.ms + 3)", "(r.ms + 3 + r.dur + 2)"
    steps_json = (
        '\'[{"name": "\' || j.step || \'", "status": "\' || '
        + STEP_STATUS.format(**fmt)
        + ' || \'", "startedAt": "\' || '
        + iso("r.ms + 4")
        + ' || \'", "finishedAt": "\' || '
        + iso("r.ms + 4 + r.dur")
        + ' || \'", "error": \' || CASE WHEN '
        + h
        + " < 60 THEN '\"exit code 1\"' ELSE 'null' END || '}]'"
    )
    values = {
        "id": "printf('%08x-%04x-7000-%04x-%012x', r.ms >> 16, r.ms & 65535, "
        "32768 | ((r.i >> 48) & 16383), r.i & 281474976710655)",
        "project_id": f"'{project_id}'",
        "job_id": "j.id",
        "job_name": "j.name",
        "status": status,
        "trigger": "'api'",
        "parameters": "'{}'",
        "mode": "'full'",
        "principal": f"'{PRINCIPAL}'",
        "attempt": "1",
        "spec": "j.spec",
        "steps": steps_json,
        "result": "'null'",
        "error_code": ERROR_CODE.format(**fmt),
        "error_message": ERROR_MESSAGE.format(**fmt),
        "worker": "'vm:' || (1000 + r.i % 2)",
        "created_at": ts("r.ms"),
        "not_before": ts("r.ms"),
        "started_at": ts(started),
        "finished_at": ts(finished),
        "heartbeat_at": ts(started),
        "log_lines": str(LOG_LINES),
        "log_bytes": str(LOG_LINES * 40),
        "object_id": "NULL",  # set below, from the id
        "context": "'null'",
        "iteration": "'null'",
    }
    runs = (
        f"INSERT INTO executions ({', '.join(RUN_COLUMNS)}) "
        "WITH RECURSIVE n(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM n WHERE i < :hi - 1), "
        "r AS (SELECT i, :t0 + i * :gap AS ms, (i * 7919) % "
        f"{jobs} AS k, (i * 2654435761) % 1000 AS h, 40 + (i * 40503) % 1000 AS dur FROM n) "
        f"SELECT {', '.join(values[c] for c in RUN_COLUMNS)} "
        "FROM r JOIN bench_jobs j ON j.k = r.k ORDER BY r.i"
    )
    logs = (
        f"INSERT INTO execution_logs ({', '.join(LOG_COLUMNS)}) "
        "SELECT e.id, l.seq, "
        "strftime('%Y-%m-%d %H:%M:%f', "
        "(julianday(e.started_at) - 2440587.5) * 86400.0 + l.seq / 1000.0, 'unixepoch') || '000', "
        "e.job_name_step, CASE WHEN l.seq IN (1, :last) THEN 'system' ELSE 'stdout' END, "
        "CASE WHEN l.seq = :last AND e.status <> 'succeeded' THEN 'error' ELSE 'info' END, "
        "CASE WHEN l.seq = 1 THEN 'step ''' || e.job_name_step || ''' (python) started' "
        "WHEN l.seq = :last THEN 'step ''' || e.job_name_step || ''' ' || "
        "CASE e.status WHEN 'succeeded' THEN 'succeeded in 0.' || printf('%03d', e.rn % 1000) "
        "|| 's' ELSE e.status END "
        "ELSE 'processed batch ' || (l.seq - 1) || ' of ' || (:last - 2) || ': ' || "
        "((e.rn * 31 + l.seq * 17) % 5000) || ' rows' END "
        "FROM (SELECT x.rowid AS rn, x.id, x.status, x.started_at, "
        "json_extract(x.steps, '$[0].name') AS job_name_step FROM executions x "
        "WHERE x.rowid > :after) e JOIN bench_lines l ORDER BY e.rn, l.seq"
    )
    return runs, logs


def fill_sqlite(path: Path, n: int, say: Any = print) -> dict[str, float]:
    """Add `n` ended runs (and their log lines) to the seeded SQLite file at `path`."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.create_function("bench_object_id", 1, _object_id, deterministic=True)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")  # 1 GB
        conn.execute("PRAGMA temp_store=MEMORY")
        project_id = conn.execute("SELECT id FROM projects WHERE name = 'demo'").fetchone()[0]
        jobs = conn.execute(
            "SELECT id, name, spec FROM jobs WHERE project_id = ? ORDER BY name", (project_id,)
        ).fetchall()
        conn.execute("CREATE TEMP TABLE bench_jobs (k INTEGER PRIMARY KEY, id, name, step, spec)")
        conn.executemany(
            "INSERT INTO bench_jobs VALUES (?, ?, ?, ?, ?)",
            [
                (k, jid, name, json.loads(spec)["steps"][0]["name"], spec)
                for k, (jid, name, spec) in enumerate(jobs)
            ],
        )
        conn.execute("CREATE TEMP TABLE bench_lines (seq INTEGER PRIMARY KEY)")
        conn.executemany(
            "INSERT INTO bench_lines VALUES (?)", [(s,) for s in range(1, LOG_LINES + 1)]
        )
        runs_sql, logs_sql = _sqlite_sql(project_id, len(jobs))
        t0, end = _first_ms()
        gap = (end - t0) / max(n, 1)
        out = {"runs_s": 0.0, "logs_s": 0.0}
        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            after = conn.execute("SELECT coalesce(max(rowid), 0) FROM executions").fetchone()[0]
            conn.execute("BEGIN")
            t = time.monotonic()
            conn.execute(runs_sql, {"lo": lo, "hi": hi, "t0": t0, "gap": gap})
            conn.execute(
                "UPDATE executions SET object_id = bench_object_id(id) WHERE rowid > ?",
                (after,),
            )
            out["runs_s"] += time.monotonic() - t
            t = time.monotonic()
            conn.execute(logs_sql, {"after": after, "last": LOG_LINES})
            out["logs_s"] += time.monotonic() - t
            conn.execute("COMMIT")
            say(f"  stored {hi:,} of {n:,} runs ({out['runs_s'] + out['logs_s']:.0f}s)")
        conn.execute("PRAGMA journal_mode=WAL")  # as jobport leaves its files
        return out
    finally:
        conn.close()


def _pg_sql(project_id: str, jobs: int) -> tuple[str, str]:
    def ts(ms: str) -> str:
        return f"(to_timestamp(({ms}) / 1000.0) AT TIME ZONE 'UTC')"

    def iso(ms: str) -> str:
        return (
            f"to_char(to_timestamp(({ms}) / 1000.0) AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\')'
        )

    h, step = "r.h", "j.step"
    fmt = {"h": h, "step": step}
    steps_json = (
        "jsonb_build_array(jsonb_build_object('name', j.step, 'status', "
        + STEP_STATUS.format(**fmt)
        + ", 'startedAt', "
        + iso("r.ms + 4")
        + ", 'finishedAt', "
        + iso("r.ms + 4 + r.dur")
        + ", 'error', CASE WHEN "
        + h
        + " < 60 THEN 'exit code 1' END))"
    )
    started, finished = "(r.ms + 3)", "(r.ms + 3 + r.dur + 2)"
    ident = (
        "lpad(to_hex(r.ms >> 16), 8, '0') || '-' || lpad(to_hex(r.ms & 65535), 4, '0') "
        "|| '-7000-' || lpad(to_hex(32768 | ((r.i >> 48) & 16383)), 4, '0') || '-' "
        "|| lpad(to_hex(r.i & 281474976710655), 12, '0')"
    )
    values = {
        "id": "r.id",
        "project_id": f"'{project_id}'",
        "job_id": "j.id",
        "job_name": "j.name",
        "status": STATUS.format(**fmt),
        "trigger": "'api'",
        "parameters": "'{}'::jsonb",
        "mode": "'full'",
        "principal": f"'{PRINCIPAL}'",
        "attempt": "1",
        "spec": "j.spec",
        "steps": steps_json,
        "result": "'null'::jsonb",
        "error_code": ERROR_CODE.format(**fmt),
        "error_message": ERROR_MESSAGE.format(**fmt),
        "worker": "'vm:' || (1000 + r.i %% 2)",
        "created_at": ts("r.ms"),
        "not_before": ts("r.ms"),
        "started_at": ts(started),
        "finished_at": ts(finished),
        "heartbeat_at": ts(started),
        "log_lines": str(LOG_LINES),
        "log_bytes": str(LOG_LINES * 40),
        "object_id": "substr(encode(sha256(convert_to(r.id, 'UTF8')), 'hex'), 1, 24)",
        "context": "'null'::jsonb",
        "iteration": "'null'::jsonb",
    }
    runs = (
        f"INSERT INTO executions ({', '.join(RUN_COLUMNS)}) "
        "SELECT " + ", ".join(values[c] for c in RUN_COLUMNS) + " FROM ("
        f"SELECT q.*, {ident.replace('r.', 'q.')} AS id FROM ("
        "SELECT i, (%(t0)s + i * %(gap)s)::bigint AS ms, (i * 7919) %% "
        f"{jobs} AS k, (i * 2654435761) %% 1000 AS h, 40 + (i * 40503) %% 1000 AS dur "
        "FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS i) q) r "
        "JOIN bench_jobs j ON j.k = r.k ORDER BY r.i"
    )
    step_name = "(x.steps -> 0 ->> 'name')"
    logs = (
        f"INSERT INTO execution_logs ({', '.join(LOG_COLUMNS)}) "
        f"SELECT x.id, l.seq, x.started_at + l.seq * interval '1 millisecond', {step_name}, "
        "CASE WHEN l.seq IN (1, %(last)s) THEN 'system' ELSE 'stdout' END, "
        "CASE WHEN l.seq = %(last)s AND x.status <> 'succeeded' THEN 'error' ELSE 'info' END, "
        f"CASE WHEN l.seq = 1 THEN 'step ''' || {step_name} || ''' (python) started' "
        f"WHEN l.seq = %(last)s THEN 'step ''' || {step_name} || ''' ' || "
        "CASE x.status WHEN 'succeeded' THEN 'succeeded in 0.' || "
        "lpad((abs(hashtext(x.id)) %% 1000)::text, 3, '0') || 's' ELSE x.status END "
        "ELSE 'processed batch ' || (l.seq - 1) || ' of ' || (%(last)s - 2) || ': ' || "
        "((abs(hashtext(x.id)) + l.seq * 17) %% 5000) || ' rows' END "
        "FROM executions x CROSS JOIN generate_series(1, %(last)s) AS l(seq) "
        "WHERE x.principal = %(principal)s AND x.created_at >= %(since)s "
        "AND x.created_at < %(until)s ORDER BY x.created_at, x.id, l.seq"
    )
    return runs, logs


def fill_postgres(url: str, n: int, say: Any = print) -> dict[str, float]:
    """Add `n` ended runs (and their log lines) to the seeded PostgreSQL database `url`."""
    import psycopg

    out = {"runs_s": 0.0, "logs_s": 0.0}
    url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        project_id = conn.execute("SELECT id FROM projects WHERE name = 'demo'").fetchone()[0]
        jobs = conn.execute(
            "SELECT id, name, spec::text FROM jobs WHERE project_id = %s ORDER BY name",
            (project_id,),
        ).fetchall()
        conn.execute(
            "CREATE TEMP TABLE bench_jobs (k int PRIMARY KEY, id text, name text, step text, "
            "spec jsonb)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_jobs VALUES (%s, %s, %s, %s, %s::jsonb)",
                [
                    (k, jid, name, json.loads(spec)["steps"][0]["name"], spec)
                    for k, (jid, name, spec) in enumerate(jobs)
                ],
            )
        conn.commit()
        runs_sql, logs_sql = _pg_sql(project_id, len(jobs))
        t0, end = _first_ms()
        gap = (end - t0) / max(n, 1)
        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            t = time.monotonic()
            conn.execute(runs_sql, {"lo": lo, "hi": hi, "t0": t0, "gap": gap})
            out["runs_s"] += time.monotonic() - t
            t = time.monotonic()
            since = dt.datetime.fromtimestamp((t0 + lo * gap) / 1000, dt.UTC).replace(tzinfo=None)
            until = dt.datetime.fromtimestamp((t0 + hi * gap) / 1000, dt.UTC).replace(tzinfo=None)
            if hi == n:
                until += dt.timedelta(seconds=1)
            conn.execute(
                logs_sql,
                {"last": LOG_LINES, "principal": PRINCIPAL, "since": since, "until": until},
            )
            out["logs_s"] += time.monotonic() - t
            conn.commit()
            say(f"  stored {hi:,} of {n:,} runs ({out['runs_s'] + out['logs_s']:.0f}s)")
    # PostgreSQL's autovacuum would vacuum and analyze these tables soon after such inserts.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) executions, execution_logs")
    return out


class Templates:
    """Filled databases, made once per (database, n) and copied for every server."""

    def __init__(self, pg_admin_url: str, say: Any = print) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="jobport-bench-stored-")
        self.pg_admin_url = pg_admin_url
        self.say = say
        self._made: dict[tuple[str, int], str] = {}
        self.fill_s: dict[tuple[str, int], float] = {}

    def sqlite(self, n: int) -> Path:
        key = ("sqlite", n)
        if key not in self._made:
            check_columns()
            path = Path(self.dir.name) / f"stored-{n}.db"
            scratch = Path(self.dir.name) / "scratch"
            scratch.mkdir(exist_ok=True)
            t = time.monotonic()
            self.say(f"bench: filling a SQLite database with {n:,} runs ...")
            seed(f"sqlite:///{path}", scratch)
            parts = fill_sqlite(path, n, self.say) if n else {}
            self.fill_s[key] = time.monotonic() - t
            self.say(
                f"bench: {n:,} runs stored in {self.fill_s[key]:.0f}s "
                f"({', '.join(f'{k} {v:.0f}' for k, v in parts.items())}), "
                f"{path.stat().st_size / 2**20:,.0f} MiB"
            )
            self._made[key] = str(path)
        return Path(self._made[key])

    def postgres(self, n: int) -> str:
        """The name of a template database holding `n` runs."""
        import psycopg

        key = ("postgres", n)
        if key not in self._made:
            check_columns()
            name = f"jobport_bench_stored_{os.getpid()}_{n}"
            with psycopg.connect(self.pg_admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.execute(f'CREATE DATABASE "{name}"')
            self._made[key] = name  # dropped by close() even if the fill fails
            url = f"{self.pg_admin_url.rsplit('/', 1)[0]}/{name}"
            scratch = Path(self.dir.name) / "scratch"
            scratch.mkdir(exist_ok=True)
            t = time.monotonic()
            self.say(f"bench: filling a PostgreSQL database with {n:,} runs ...")
            seed(url, scratch)
            parts = fill_postgres(url, n, self.say) if n else {}
            self.fill_s[key] = time.monotonic() - t
            self.say(
                f"bench: {n:,} runs stored in {self.fill_s[key]:.0f}s "
                f"({', '.join(f'{k} {v:.0f}' for k, v in parts.items())})"
            )
        return self._made[key]

    def close(self) -> None:
        for (kind, _), name in self._made.items():
            if kind == "postgres":
                with contextlib.suppress(Exception):
                    import psycopg

                    with psycopg.connect(self.pg_admin_url, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.dir.cleanup()
