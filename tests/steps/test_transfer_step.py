"""The `transfer` step through the real server: full and delta runs between SQLite files,
PostgreSQL and MariaDB, the watermark recorded only on success, a failed full run leaving
the target as it was, and bad input failing clearly."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from conftest import Server, create_postgres_database, drop_postgres_database

from .conftest import ENCRYPTION_KEY, add_connection, log_text, make_job, run_job, unique
from .test_sql_step import engine_url

pytestmark = pytest.mark.timeout(180)

ROWS = 25


def execute(url: str, *statements: tuple[str, Any]) -> None:
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        for sql, params in statements:
            conn.execute(text(sql), params)
    engine.dispose()


def fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(engine_url(url))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql))]
    engine.dispose()
    return rows


def seed(url: str, table: str, rows: int = ROWS) -> None:
    execute(
        url,
        (
            f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, customer VARCHAR(30) NOT NULL, "
            "amount NUMERIC(10,2), updated_at TIMESTAMP NULL)",
            {},
        ),
        (
            f"INSERT INTO {table} VALUES (:id, :customer, :amount, :updated_at)",
            [
                {
                    "id": i,
                    "customer": f"c{i}",
                    "amount": f"{i}.25",
                    "updated_at": f"2026-01-01 00:00:{i:02d}",
                }
                for i in range(1, rows + 1)
            ],
        ),
    )


def transfer_step(source: str, target: str, **extra: Any) -> dict[str, Any]:
    config = {
        "source": {"connection": "src", "table": source},
        "target": {"connection": "dst", "table": target},
        "primaryKey": ["id"],
        "watermark": "updated_at",
        "batchSize": 10,
        **extra,
    }
    return {"name": "copy", "kind": "transfer", "config": config}


PAIRS = [
    ("sqlite", "sqlite"),
    ("postgresql", "postgresql"),
    ("mariadb", "mariadb"),
    ("sqlite", "postgresql"),
    ("postgresql", "mariadb"),
]


@pytest.fixture(params=PAIRS, ids=["->".join(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    def url(kind: str, name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}"
        fixture = "pg_data_url" if kind == "postgresql" else "mariadb_url"
        return str(request.getfixturevalue(fixture))

    return url(request.param[0], "source.db"), url(request.param[1], "target.db")


def test_full_creates_the_target_and_delta_moves_only_what_changed(
    data_server: Server, api: httpx2.Client, project: str, pair: tuple[str, str]
) -> None:
    source_url, target_url = pair
    source, target = unique("src"), unique("dst")
    seed(source_url, source)
    add_connection(data_server, project, "src", source_url)
    add_connection(data_server, project, "dst", target_url)
    job = make_job(api, project, [transfer_step(source, target)])

    # The first delta run has no watermark yet: it runs full, and creates the target.
    done = run_job(api, project, job, mode="delta")
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["mode"] == "full" and result["targetCreated"] is True
    assert (result["rowsRead"], result["rowsWritten"], result["batches"]) == (ROWS, ROWS, 3)
    assert result["watermarkBefore"] is None
    assert result["watermarkAfter"].startswith("2026-01-01")
    assert result["watermarkAfter"].endswith(f"00:00:{ROWS}")
    logs = log_text(api, done["id"])
    assert "batch 1: 10 rows read, 10 written" in logs and f"batch 3: {ROWS} rows read" in logs
    copied = fetch(target_url, f"SELECT id, customer, amount FROM {target} ORDER BY id")
    assert len(copied) == ROWS and copied[0][:2] == (1, "c1")
    assert str(copied[0][2]) in ("1.25", "1.2500000000")

    # Two rows change, one is new: the delta run reads those three and upserts them.
    execute(
        source_url,
        (
            f"UPDATE {source} SET customer = 'changed', updated_at = :t WHERE id IN (3, 4)",
            {"t": "2026-01-02 00:00:00"},
        ),
        (f"INSERT INTO {source} VALUES (100, 'new', 1, :t)", {"t": "2026-01-03 00:00:00"}),
    )
    done = run_job(api, project, job, mode="delta")
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["mode"] == "delta"
    assert (result["rowsRead"], result["rowsWritten"]) == (3, 3)
    assert result["watermarkBefore"].endswith(f"00:00:{ROWS}")
    assert result["watermarkAfter"].startswith("2026-01-03")
    rows = fetch(target_url, f"SELECT id, customer FROM {target} WHERE id IN (2, 3, 4, 100)")
    assert sorted(rows) == [(2, "c2"), (3, "changed"), (4, "changed"), (100, "new")]
    assert fetch(target_url, f"SELECT count(*) FROM {target}") == [(ROWS + 1,)]

    # Nothing changed since: the next delta reads nothing and keeps the watermark.
    done = run_job(api, project, job, mode="delta")
    assert (done["result"]["rowsRead"], done["result"]["watermarkAfter"]) == (
        0,
        result["watermarkAfter"],
    )

    # A full run replaces the target's rows with the source's.
    execute(target_url, (f"INSERT INTO {target} (id, customer) VALUES (999, 'stray')", {}))
    done = run_job(api, project, job, mode="full")
    assert done["result"]["mode"] == "full" and done["result"]["rowsRead"] == ROWS + 1
    assert fetch(target_url, f"SELECT count(*) FROM {target} WHERE id = 999") == [(0,)]


def test_the_watermark_advances_only_when_the_run_succeeds(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source, target = unique("src"), unique("dst")
    seed(source_url, source)
    add_connection(data_server, project, "src", source_url)
    add_connection(data_server, project, "dst", f"sqlite:///{tmp_path / 'target.db'}")
    # The copy succeeds, then a later step fails: the run fails, the watermark stays.
    marker = tmp_path / "ok"
    steps = [
        {**transfer_step(source, target), "result": True},
        {
            "name": "after",
            "kind": "command",
            "needs": ["copy"],
            "config": {"command": f"test -e '{marker}'"},
        },
    ]
    job = make_job(api, project, steps)
    for _ in range(2):
        done = run_job(api, project, job, mode="delta")
        assert done["status"] == "failed" and done["result"] is None, done
    # Once the run succeeds: still a full run, since no failed run recorded a watermark.
    marker.touch()
    done = run_job(api, project, job, mode="delta")
    assert done["status"] == "succeeded", done
    assert done["result"]["mode"] == "full" and done["result"]["watermarkBefore"] is None
    done = run_job(api, project, job, mode="delta")
    assert done["result"]["mode"] == "delta" and done["result"]["rowsRead"] == 0


def test_a_transfer_that_is_not_the_result_step_keeps_its_watermark(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    source, target = unique("src"), unique("dst")
    seed(source_url, source)
    add_connection(data_server, project, "src", source_url)
    add_connection(data_server, project, "dst", target_url)
    # The execution's result is the last step's; the copy's watermark must count all the same.
    steps = [
        transfer_step(source, target),
        {"name": "after", "kind": "command", "needs": ["copy"], "config": {"command": "true"}},
    ]
    job = make_job(api, project, steps)
    assert run_job(api, project, job, mode="delta")["status"] == "succeeded"
    # A row only the target has: a delta run upserts and keeps it, a full run would drop it.
    execute(target_url, (f"INSERT INTO {target} (id, customer) VALUES (999, 'stray')", {}))
    done = run_job(api, project, job, mode="delta")
    assert done["status"] == "succeeded", done
    assert fetch(target_url, f"SELECT customer FROM {target} WHERE id = 999") == [("stray",)]


def test_a_failed_full_run_leaves_the_target_as_it_was(
    data_server: Server, api: httpx2.Client, project: str, database_url: str
) -> None:
    source, target = unique("src"), unique("dst")
    seed(database_url, source)
    # Row 15 (in a batch after the first) has no customer, which the target refuses.
    execute(
        database_url,
        (
            f"CREATE TABLE {target} (id INTEGER PRIMARY KEY, customer VARCHAR(30) NOT NULL, "
            "amount NUMERIC(10,2), updated_at TIMESTAMP NULL)",
            {},
        ),
        (f"INSERT INTO {target} (id, customer) VALUES (1, 'old'), (2, 'old')", {}),
        (f"ALTER TABLE {source} RENAME TO {source}_x", {}),
        (
            f"CREATE TABLE {source} (id INTEGER PRIMARY KEY, customer VARCHAR(30), "
            f"amount NUMERIC(10,2), updated_at TIMESTAMP NULL)",
            {},
        ),
        (f"INSERT INTO {source} SELECT * FROM {source}_x", {}),
        (f"UPDATE {source} SET customer = NULL WHERE id = 15", {}),
    )
    add_connection(data_server, project, "src", database_url)
    add_connection(data_server, project, "dst", database_url)
    job = make_job(api, project, [transfer_step(source, target)])
    done = run_job(api, project, job)
    assert done["status"] == "failed", done
    message = done["error"]["message"]
    assert "writing batch" in message and target in message, message
    assert "batch 1: 10 rows read, 10 written" in log_text(api, done["id"])
    assert fetch(database_url, f"SELECT id, customer FROM {target} ORDER BY id") == [
        (1, "old"),
        (2, "old"),
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"primaryKey": ["nope"]}, "the source has no column 'nope'"),
        ({"watermark": "changed_at"}, "the source has no column 'changed_at'"),
        ({"source": {"connection": "src", "table": "missing"}}, "no table 'missing'"),
        ({"source": {"connection": "other", "table": "x"}}, "no connection 'other'"),
    ],
)
def test_bad_input_fails_the_step_clearly(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Path, change: Any, words: str
) -> None:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    source = unique("src")
    seed(url, source)
    add_connection(data_server, project, "src", url)
    add_connection(data_server, project, "dst", url)
    step = transfer_step(source, unique("dst"))
    step["config"].update(change)
    job = make_job(api, project, [step])
    done = run_job(api, project, job, mode="delta")
    assert done["status"] == "failed", done
    assert words in done["error"]["message"], done["error"]


def test_a_query_source_with_bound_parameters(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Path, pg_data_url: str
) -> None:
    source, target = unique("src"), unique("dst")
    seed(pg_data_url, source)
    add_connection(data_server, project, "src", pg_data_url)
    add_connection(data_server, project, "dst", f"sqlite:///{tmp_path / 'target.db'}")
    step = transfer_step(source, target)
    step["config"]["source"] = {
        "connection": "src",
        "query": f"select id, customer, updated_at from {source} where customer <> :skip",
        "parameters": {"skip": "{{ params.skip }}"},
    }
    job = make_job(api, project, [step], parameters={"skip": "c1"})
    done = run_job(api, project, job, parameters={"skip": "c2' or '1'='1"})
    assert done["status"] == "succeeded", done
    assert done["result"]["rowsRead"] == ROWS
    done = run_job(api, project, job, parameters={"skip": "c2"}, mode="full")
    assert done["result"]["rowsRead"] == ROWS - 1


def test_templates_in_a_source_query_are_refused(api: httpx2.Client, project: str) -> None:
    step = transfer_step("a", "b")
    step["config"]["source"] = {"connection": "src", "query": "select * from {{ params.t }}"}
    response = api.post(f"/api/v1/projects/{project}/jobs", json={"name": "t", "steps": [step]})
    assert response.status_code == 422 and "source.parameters" in response.text


ENDLESS = {
    # SQLite: rows without end, so the step is stopped between batches.
    "sqlite": "with recursive r(i) as (select 1 union all select i + 1 from r) "
    "select i as id, 'x' as customer from r",
    # PostgreSQL: one statement that blocks, so the stop cancels it at the server.
    "postgresql": "select 1 as id, 'x' as customer from pg_sleep(60)",
    # MariaDB: the same, cancelled with KILL QUERY from a second connection.
    "mariadb": "select 1 as id, 'x' as customer from (select sleep(60) as s) as slow",
}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_a_timeout_stops_the_transfer_and_the_target_stays(
    data_server: Server,
    api: httpx2.Client,
    project: str,
    tmp_path: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    if kind == "sqlite":
        source_url = f"sqlite:///{tmp_path / 'source.db'}"
    elif kind == "mariadb":
        source_url = str(request.getfixturevalue("mariadb_url"))
    else:
        source_url = create_postgres_database()
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    target = unique("dst")
    execute(
        target_url,
        (f"CREATE TABLE {target} (id INTEGER PRIMARY KEY, customer TEXT)", {}),
        (f"INSERT INTO {target} VALUES (1, 'old')", {}),
    )
    add_connection(data_server, project, "src", source_url)
    add_connection(data_server, project, "dst", target_url)
    step = transfer_step("x", target, batchSize=1000)
    step["config"]["source"] = {"connection": "src", "query": ENDLESS[kind]}
    del step["config"]["watermark"]
    job = make_job(api, project, [{**step, "timeoutSeconds": 2}])
    started = time.monotonic()
    done = run_job(api, project, job)
    assert done["status"] == "timed_out", done
    assert time.monotonic() - started < 12
    assert "worker was replaced" not in str(done["steps"])
    assert fetch(target_url, f"SELECT id, customer FROM {target}") == [(1, "old")]
    if kind == "postgresql":
        drop_postgres_database(source_url)


def test_delta_watermarks_on_a_postgresql_store(make_server: Any, tmp_path: Path) -> None:
    """The watermark row is written and then updated in a PostgreSQL store too."""
    store = create_postgres_database()
    try:
        server = make_server(store, encryption_key=ENCRYPTION_KEY).start()
        source_url = f"sqlite:///{tmp_path / 'source.db'}"
        source, target = unique("src"), unique("dst")
        seed(source_url, source)
        with server.client() as api:
            project = unique("p").replace("_", "-")
            assert api.post("/api/v1/projects", json={"name": project}).status_code == 201
            add_connection(server, project, "src", source_url)
            add_connection(server, project, "dst", f"sqlite:///{tmp_path / 'target.db'}")
            job = make_job(api, project, [transfer_step(source, target)])
            assert run_job(api, project, job, mode="delta")["result"]["mode"] == "full"
            execute(source_url, (f"UPDATE {source} SET updated_at = '2026-02-01' WHERE id = 7", {}))
            done = run_job(api, project, job, mode="delta")
            assert (done["result"]["mode"], done["result"]["rowsRead"]) == ("delta", 1)
            done = run_job(api, project, job, mode="delta")
            assert done["result"]["rowsRead"] == 0
            assert done["result"]["watermarkBefore"].startswith("2026-02-01")
        server.stop()
    finally:
        drop_postgres_database(store)


def test_a_delta_that_creates_the_target_runs_full_and_null_watermarks_are_counted(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Path
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    source, target = unique("src"), unique("dst")
    seed(source_url, source)
    add_connection(data_server, project, "src", source_url)
    add_connection(data_server, project, "dst", target_url)
    job = make_job(api, project, [transfer_step(source, target)])
    assert run_job(api, project, job, mode="delta")["result"]["rowsWritten"] == ROWS
    # The target is dropped and the source gains a row: a delta would fill it with that one.
    execute(target_url, (f"DROP TABLE {target}", {}))
    execute(source_url, (f"INSERT INTO {source} VALUES (100, 'new', 1, '2026-01-03')", {}))
    done = run_job(api, project, job, mode="delta")
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert (result["mode"], result["targetCreated"], result["rowsRead"]) == ("full", True, ROWS + 1)
    assert result["watermarkBefore"].endswith(f"00:00:{ROWS}")
    assert fetch(target_url, f"SELECT count(*) FROM {target}") == [(ROWS + 1,)]
    assert f"the target table '{target}' was created: this run is full" in log_text(api, done["id"])
    # Rows without a watermark are not moved by a delta, which says how many there are.
    execute(source_url, (f"UPDATE {source} SET updated_at = NULL WHERE id IN (1, 2)", {}))
    done = run_job(api, project, job, mode="delta")
    assert (done["result"]["mode"], done["result"]["rowsRead"]) == ("delta", 0)
    warning = "warning: 2 source rows have a NULL watermark (updated_at): a delta does not move"
    assert warning in log_text(api, done["id"])


def test_a_query_source_keeps_the_time_zone_of_timestamptz(
    data_server: Server, api: httpx2.Client, project: str, pg_data_url: str
) -> None:
    source, target = unique("src"), unique("dst")
    moments = ["2026-01-01 00:30:00+00", "2026-06-30 23:15:00.5+02"]
    execute(
        pg_data_url,
        (f"CREATE TABLE {source} (id INTEGER PRIMARY KEY, ts TIMESTAMPTZ)", {}),
        (
            f"INSERT INTO {source} VALUES (:id, :ts)",
            [{"id": i, "ts": t} for i, t in enumerate(moments)],
        ),
    )
    # The target's session is in another zone: a timestamp without zone would shift by it.
    sydney = f"{pg_data_url}?options=-c%20TimeZone%3DAustralia/Sydney"
    add_connection(data_server, project, "src", pg_data_url)
    add_connection(data_server, project, "dst", sydney)
    step = transfer_step(source, target)
    step["config"]["source"] = {"connection": "src", "query": f"select id, ts from {source}"}
    del step["config"]["watermark"]
    done = run_job(api, project, make_job(api, project, [step]))
    assert done["status"] == "succeeded", done
    kind = "SELECT data_type FROM information_schema.columns WHERE column_name = 'ts' AND "
    assert fetch(pg_data_url, f"{kind} table_name = '{target}'") == [("timestamp with time zone",)]
    epochs = "SELECT id, extract(epoch FROM ts) FROM {} ORDER BY id"
    assert fetch(pg_data_url, epochs.format(target)) == fetch(pg_data_url, epochs.format(source))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("connections", ["one connection", "two connections"])
def test_a_transfer_within_one_sqlite_file_does_not_block_itself(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Path, connections: str
) -> None:
    """50,000 rows of 200 bytes: far past the ~2 MB at which the writer must spill its cache
    to the file, which a second connection's read lock on the same file would block."""
    path, count = tmp_path / "one.db", 50_000
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
        db.executemany(
            "INSERT INTO src VALUES (?, ?, ?)", ((i, "x" * 200, i) for i in range(count))
        )
    db.close()
    add_connection(data_server, project, "src", f"sqlite:///{path}")
    if connections == "one connection":
        step = transfer_step("src", "dst", watermark="n", batchSize=5000)
        step["config"]["target"]["connection"] = "src"
    else:  # the same file, spelled another way
        add_connection(data_server, project, "dst", f"sqlite:///{tmp_path / '.' / 'one.db'}")
        step = transfer_step("src", "dst", watermark="n", batchSize=5000)
    job = make_job(api, project, [{**step, "timeoutSeconds": 30}])
    done = run_job(api, project, job, wait=40, mode="delta")
    assert done["status"] == "succeeded", done
    assert done["result"]["rowsWritten"] == count
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE src SET v = 'changed', n = {count} WHERE id < 10")
    db.close()
    done = run_job(api, project, job, wait=40, mode="delta")
    assert (done["status"], done["result"]["mode"], done["result"]["rowsRead"]) == (
        "succeeded",
        "delta",
        10,
    )
    assert fetch(f"sqlite:///{path}", "SELECT count(*), sum(v = 'changed') FROM dst") == [
        (count, 10)
    ]
    # The source table as its own target would empty it: refused.
    step["config"]["target"]["table"] = "SRC"
    done = run_job(api, project, make_job(api, project, [step]))
    assert "the source table is the target table" in done["error"]["message"], done


@pytest.mark.parametrize("table", ["t\n", "t\nx", "t.", ".t", "a.b.c", "t;drop"])
def test_a_table_name_must_be_a_name_and_nothing_more(
    api: httpx2.Client, project: str, table: str
) -> None:
    step = transfer_step("a", table)
    response = api.post(f"/api/v1/projects/{project}/jobs", json={"name": "t", "steps": [step]})
    assert response.status_code == 422 and "target.table" in response.text, response.text
