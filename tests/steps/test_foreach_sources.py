"""Foreach items from a SQL query, a table and an HTTP answer, on each database kind,
through the real server (its connections encrypted: tests/steps/conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx2
from sqlalchemy import create_engine, text

from conftest import Server
from steps.conftest import add_connection, log_text, make_job, run_job, unique


def _items(api: httpx2.Client, execution_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/executions/{execution_id}/items", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _seed(url: str, table: str) -> None:
    engine = create_engine(url.replace("mysql://", "mysql+pymysql://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(f"CREATE TABLE {table} (id INTEGER, name VARCHAR(40), floor INTEGER)")
            )
            conn.execute(
                text(f"INSERT INTO {table} VALUES (:id, :name, :floor)"),
                [{"id": i, "name": f"device {i}", "floor": i % 3} for i in range(1, 8)],
            )
    finally:
        engine.dispose()


ECHO = {"name": "each", "kind": "command", "config": {"command": "echo {{ item.name }}"}}


def test_the_rows_of_a_query_and_of_a_table_are_the_items(
    data_server: Server, api: httpx2.Client, project: str, database_url: str
) -> None:
    table = unique("devices")
    _seed(database_url, table)
    connection = unique("db")
    add_connection(data_server, project, connection, database_url)

    by_query = make_job(
        api,
        project,
        [ECHO],
        foreach={
            "source": {
                "sql": {
                    "connection": connection,
                    "query": f"SELECT id, name FROM {table} WHERE floor = :floor ORDER BY id",
                    "parameters": {"floor": "{{ params.floor }}"},
                }
            }
        },
        parameters={"floor": "1"},
    )
    done = run_job(api, project, by_query, parameters={"floor": "2"})
    assert done["status"] == "succeeded", done
    assert [i["item"] for i in _items(api, done["id"])] == [
        {"id": 2, "name": "device 2"},
        {"id": 5, "name": "device 5"},
    ]
    assert "device 5" in log_text(api, done["id"])

    whole = make_job(
        api,
        project,
        [ECHO],
        foreach={
            "source": {"table": {"connection": connection, "table": table}},
            "query": {"floor": 0},
            "resourceType": "dataTableRow",
        },
    )
    done = run_job(api, project, whole)
    assert done["status"] == "succeeded", done
    got = sorted(i["item"]["id"] for i in _items(api, done["id"]))
    assert got == [3, 6]
    assert done["iteration"]["total"] == 2


def test_a_table_that_is_not_there_fails_the_run_with_the_reason(
    data_server: Server, api: httpx2.Client, project: str, tmp_path: Any
) -> None:
    connection = unique("db")
    add_connection(data_server, project, connection, f"sqlite:///{tmp_path / 'empty.db'}")
    job = make_job(
        api,
        project,
        [ECHO],
        foreach={"source": {"table": {"connection": connection, "table": "absent"}}},
    )
    done = run_job(api, project, job)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "items_unavailable"
    assert "no such table" in done["error"]["message"]


def test_a_table_name_is_an_identifier_never_sql(api: httpx2.Client, project: str) -> None:
    for name in ('t"; DROP TABLE x; --', "t x", "1t", "t`"):
        body = {
            "name": unique("bad").replace("_", "-"),
            "steps": [ECHO],
            "foreach": {"source": {"table": {"connection": "db", "table": name}}},
        }
        response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
        assert response.status_code == 422, (name, response.text)


def test_the_list_in_an_http_answer_is_the_items(
    data_server: Server, api: httpx2.Client, project: str
) -> None:
    # jobport's own API as the service: its projects listing is {"items": [...]}.
    connection = unique("self")
    with data_server.client() as admin:
        response = admin.post(
            f"/api/v1/projects/{project}/connections",
            json={
                "name": connection,
                "url": data_server.url,
                "headers": {"Authorization": f"Bearer {data_server.key}"},
            },
        )
    assert response.status_code == 201, response.text
    job = make_job(
        api,
        project,
        [{"name": "each", "kind": "command", "config": {"command": "echo {{ item.name }}"}}],
        foreach={
            "source": {"http": {"connection": connection, "path": "/api/v1/projects"}},
            "query": {"name": project},
        },
    )
    done = run_job(api, project, job)
    assert done["status"] == "succeeded", done
    assert [i["item"]["name"] for i in _items(api, done["id"])] == [project]

    nested = make_job(
        api,
        project,
        [ECHO],
        foreach={
            "source": {
                "http": {"connection": connection, "path": f"/api/v1/projects/{project}"},
                "path": "body.name",
            }
        },
    )
    done = run_job(api, project, nested)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "items_unavailable"
    assert "at 'body.name' is not a list of items" in done["error"]["message"]
