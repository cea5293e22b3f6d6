"""The `sql` step through the real server, on SQLite files, PostgreSQL and MariaDB: records
with a schema, bound parameters, maxRows, changes, failures, and cancel at the database."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from conftest import Server, wait_for

from .conftest import add_connection, log_text, make_job, run_job, unique

pytestmark = pytest.mark.timeout(180)


def engine_url(url: str) -> str:
    """The URL as the test process opens it (psycopg and pymysql are the installed drivers)."""
    return url.replace("postgresql://", "postgresql+psycopg://").replace(
        "mysql://", "mysql+pymysql://"
    )


def seed(url: str, table: str) -> None:
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, region VARCHAR(20), "
                "amount NUMERIC(10,2), placed DATE, note VARCHAR(100))"
            )
        )
        conn.execute(
            text(f"INSERT INTO {table} VALUES (:id, :region, :amount, :placed, :note)"),
            [
                {
                    "id": i,
                    "region": "north" if i % 2 else "south",
                    "amount": f"{i}.50",
                    "placed": f"2026-01-{i:02d}",
                    "note": f"order {i}",
                }
                for i in range(1, 21)
            ],
        )
    engine.dispose()


def sql_step(**config: Any) -> dict[str, Any]:
    return {"name": "query", "kind": "sql", "config": {"connection": "db", **config}}


def test_records_schema_bound_parameters_and_max_rows(
    data_server: Server, api: httpx2.Client, project: str, database_url: str
) -> None:
    table = unique("orders")
    seed(database_url, table)
    add_connection(data_server, project, "db", database_url)
    job = make_job(
        api,
        project,
        [
            sql_step(
                query=f"select id, region, amount, placed from {table} "
                "where region = :region order by id",
                parameters={"region": "{{ params.region }}"},
                maxRows=4,
            )
        ],
        parameters={"region": "north"},
    )
    done = run_job(api, project, job, parameters={"region": "north"})
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert [r["id"] for r in result["records"]] == [1, 3, 5, 7]
    assert result["truncated"] is True and "maxRows" in result["note"]
    assert result["records"][0]["region"] == "north"
    sqlite = database_url.startswith("sqlite")
    # A decimal stays exact (SQLite stores NUMERIC(10,2) 1.50 as the REAL 1.5).
    assert result["records"][0]["amount"] == (1.5 if sqlite else "1.50")
    assert result["records"][0]["placed"].startswith("2026-01-01")
    schema = {c["name"]: c for c in result["schema"]}
    assert [c["name"] for c in result["schema"]] == ["id", "region", "amount", "placed"]
    assert schema["id"]["type"] == "integer"
    assert schema["region"]["type"] == "text"
    if not sqlite:  # SQLite keeps no column types in results
        assert schema["amount"]["type"] == "decimal"
        assert (schema["amount"]["precision"], schema["amount"]["scale"]) == (10, 2)
        assert "10,2" in schema["amount"]["nativeType"]
        assert schema["placed"]["type"] in ("date", "datetime")
    assert "cut at maxRows" in log_text(api, done["id"])
    # ?noSchema=true drops the schema, as for any result that has one.
    url = f"/api/v1/executions/{done['id']}/result"
    plain = api.get(url, params={"noSchema": "true"}).json()
    assert "schema" not in plain and len(plain["records"]) == 4

    # A hostile value is data: it matches nothing and the table is intact.
    hostile = "north' OR '1'='1"
    done = run_job(api, project, job, parameters={"region": hostile})
    assert done["status"] == "succeeded", done
    assert done["result"]["records"] == [] and done["result"]["truncated"] is False


def test_a_change_returns_the_rows_affected(
    data_server: Server, api: httpx2.Client, project: str, database_url: str
) -> None:
    table = unique("orders")
    seed(database_url, table)
    add_connection(data_server, project, "db", database_url)
    job = make_job(
        api,
        project,
        [
            sql_step(
                query=f"update {table} set note = :note where region = 'south'",
                parameters={"note": "{{ params.note }}"},
            )
        ],
        parameters={"note": "x"},
    )
    done = run_job(api, project, job, parameters={"note": "shipped; drop table x"})
    assert done["status"] == "succeeded", done
    assert done["result"] == {"rowsAffected": 10}
    engine = create_engine(engine_url(database_url))
    with engine.connect() as conn:
        notes = conn.execute(text(f"select distinct note from {table} where region = 'south'"))
        assert notes.scalars().all() == ["shipped; drop table x"]
    engine.dispose()


def test_a_template_in_the_query_is_refused(api: httpx2.Client, project: str) -> None:
    response = api.post(
        f"/api/v1/projects/{project}/jobs",
        json={
            "name": "spliced",
            "steps": [sql_step(query="select * from t where region = '{{ params.region }}'")],
        },
    )
    assert response.status_code == 422, response.text
    assert ":name" in response.text and "parameters" in response.text


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"connection": "nope", "query": "select 1"}, "no connection 'nope'"),
        ({"query": "select * from no_such_table"}, "the query failed"),
        ({"query": "select :missing"}, "parameters has no value for missing"),
        ({"query": "select 1", "maxRows": "{{ params.n }}"}, "maxRows must be"),
    ],
)
def test_bad_input_fails_the_step_clearly(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Any, config: Any, words: str
) -> None:
    add_connection(data_server, project, "db", f"sqlite:///{tmp_path / 'x.db'}")
    job = make_job(api, project, [sql_step(**config)], parameters={"n": "many"})
    done = run_job(api, project, job)
    assert done["status"] == "failed", done
    assert words in done["error"]["message"], done["error"]


def test_a_bad_url_fails_the_step_without_its_password(
    data_server: Server, api: httpx2.Client, project: str
) -> None:
    add_connection(data_server, project, "db", "postgresql://u:s3cret@127.0.0.1:1/nowhere")
    job = make_job(api, project, [sql_step(query="select 1")])
    done = run_job(api, project, job)
    assert done["status"] == "failed", done
    assert "connecting to 'db' failed" in done["error"]["message"]
    assert "s3cret" not in done["error"]["message"] + log_text(api, done["id"])


SLOW = {
    "sqlite": "with recursive r(i) as (select 1 union all select i + 1 from r) "
    "select count(*) from r",
    "postgresql": "select pg_sleep(60)",
    "mysql": "select sleep(60)",
}


def test_timeout_and_cancel_stop_the_query_at_the_database(
    data_server: Server, api: httpx2.Client, project: str, database_url: str
) -> None:
    add_connection(data_server, project, "db", database_url)
    query = SLOW[database_url.split(":", 1)[0]]
    timed = make_job(api, project, [{**sql_step(query=query), "timeoutSeconds": 1}])
    started = time.monotonic()
    done = run_job(api, project, timed)
    assert done["status"] == "timed_out", done
    assert time.monotonic() - started < 10  # not the query's 60 s, nor a worker replaced
    assert "worker was replaced" not in str(done["steps"])

    slow = make_job(api, project, [sql_step(query=query)])
    response = api.post(f"/api/v1/projects/{project}/jobs/{slow}/execute", json={})
    execution_id = response.json()["id"]
    wait_for(
        lambda: (
            api.get(f"/api/v1/executions/{execution_id}").json()["steps"][0]["status"] == "running"
        )
    )
    time.sleep(0.5)
    assert api.post(f"/api/v1/executions/{execution_id}/cancel").status_code in (200, 202)
    ended = wait_for(
        lambda: (
            (body := api.get(f"/api/v1/executions/{execution_id}").json())["status"]
            in ("cancelled", "failed", "succeeded")
            and body
        ),
        timeout=15,
    )
    assert ended["status"] == "cancelled", ended
    assert "worker was replaced" not in str(ended["steps"])


def test_statements_postgresql_cannot_stream_run_once(
    data_server: Server, api: httpx2.Client, project: str, pg_data_url: str
) -> None:
    """A data-modifying WITH, SELECT ... INTO and WITH ... INSERT start like a query but
    PostgreSQL refuses them as a server-side cursor: they run plainly, once."""
    table, copy = unique("w"), unique("w_copy")
    engine = create_engine(engine_url(pg_data_url))
    with engine.begin() as conn:
        conn.execute(text(f"create table {table} (id serial primary key, v text)"))
        conn.execute(text(f"insert into {table} (v) values ('a'), ('b')"))
    add_connection(data_server, project, "db", pg_data_url)
    inserted = (
        f"with d as (insert into {table} (v) values (:v) returning id, v) select id, v from d"
    )
    statements = [
        (inserted, {"v": "{{ params.v }}"}),
        (f"with d as (delete from {table} where v = 'a' returning id) select count(*) from d", {}),
        (f"select * into {copy} from {table}", {}),
        (f"with x as (select 'z' as v) insert into {table} (v) select v from x", {}),
    ]
    results = []
    for query, parameters in statements:
        step = sql_step(query=query, parameters=parameters)
        done = run_job(api, project, make_job(api, project, [step], parameters={"v": "c"}))
        assert done["status"] == "succeeded", done
        results.append(done["result"])
    assert results[0]["records"] == [{"id": 3, "v": "c"}]
    assert [c["name"] for c in results[0]["schema"]] == ["id", "v"]
    assert results[1]["records"] == [{"count": 1}]
    assert results[2] == {"rowsAffected": 2}
    assert results[3] == {"rowsAffected": 1}
    with engine.connect() as conn:
        rows = conn.execute(text(f"select v from {table} order by id")).scalars().all()
        assert rows == ["b", "c", "z"]  # 'c' once: the refused cursor ran nothing
        assert conn.execute(text(f"select v from {copy} order by id")).scalars().all() == [
            "b",
            "c",
        ]
    engine.dispose()

    # A query PostgreSQL refuses for itself fails with its own message, not the cursor's.
    job = make_job(api, project, [sql_step(query=f"select nope from {table}")])
    done = run_job(api, project, job)
    assert done["status"] == "failed", done
    assert "nope" in done["error"]["message"]
    assert "DECLARE" not in done["error"]["message"]


def test_repeated_column_names_keep_every_value(
    data_server: Server, api: httpx2.Client, project: str, database_url: str
) -> None:
    add_connection(data_server, project, "db", database_url)
    query = "select 1 as a, 2 as a_2, 3 as a, 4 as a, 5 as b"
    done = run_job(api, project, make_job(api, project, [sql_step(query=query)]))
    assert done["status"] == "succeeded", done
    assert done["result"]["records"] == [{"a": 1, "a_2": 2, "a_3": 3, "a_4": 4, "b": 5}]
    names = [c["name"] for c in done["result"]["schema"]]
    assert names == ["a", "a_2", "a_3", "a_4", "b"]


def test_a_parameter_name_must_be_an_identifier_to_its_end(
    api: httpx2.Client, project: str
) -> None:
    for name in ("region\n", "re gion", "1st", ""):
        step = sql_step(query="select :region", parameters={name: "x"})
        response = api.post(
            f"/api/v1/projects/{project}/jobs", json={"name": unique("j"), "steps": [step]}
        )
        assert response.status_code == 422, (name, response.text)
        assert "parameter names must be identifiers" in response.text


def test_mariadb_text_and_small_integers_get_their_types(
    data_server: Server, api: httpx2.Client, project: str, mariadb_url: str
) -> None:
    """pymysql reports TEXT as BLOB (the charset tells bytes apart) and names TINYINT's code
    CHAR too: neither made a text column binary, nor a tinyint a char."""
    table = unique("kinds")
    engine = create_engine(engine_url(mariadb_url))
    with engine.begin() as conn:
        conn.execute(text(f"create table {table} (t tinyint, s text, b blob, v varbinary(4))"))
        conn.execute(text(f"insert into {table} values (1, 'x', x'00', 'ab')"))
    engine.dispose()
    add_connection(data_server, project, "db", mariadb_url)
    done = run_job(api, project, make_job(api, project, [sql_step(query=f"select * from {table}")]))
    assert done["status"] == "succeeded", done
    types = {c["name"]: (c["type"], c["nativeType"]) for c in done["result"]["schema"]}
    assert types == {
        "t": ("integer", "tinyint"),
        "s": ("text", "text"),
        "b": ("binary", "blob"),
        "v": ("binary", "varbinary"),
    }
    assert done["result"]["records"] == [{"t": 1, "s": "x", "b": "AA==", "v": "YWI="}]
