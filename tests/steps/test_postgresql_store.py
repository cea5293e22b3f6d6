"""Every data step kind, and connections, end to end through a server whose own store is
PostgreSQL (the other step tests run on a SQLite store): the secrets are encrypted in
PostgreSQL, decrypted by its workers, and the results stored there."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from conftest import Server, create_postgres_database, drop_postgres_database

from .conftest import ENCRYPTION_KEY, add_connection, make_job, run_job, unique

pytestmark = pytest.mark.timeout(120)

TOKEN = "pg-store-header-secret-7c1d"


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = create_postgres_database()
    workdir = tmp_path_factory.mktemp("pg-store")
    server = Server(store, workdir, encryption_key=ENCRYPTION_KEY).start()
    try:
        yield server
    finally:
        server.stop()
        drop_postgres_database(store)


@pytest.fixture(scope="module")
def pg_api(pg_server: Server) -> Iterator[httpx2.Client]:
    with pg_server.client() as client:
        yield client


@pytest.fixture
def pg_project(pg_api: httpx2.Client) -> str:
    name = unique("p").replace("_", "-")
    assert pg_api.post("/api/v1/projects", json={"name": name}).status_code == 201
    return name


@pytest.fixture
def echo_service() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP service that answers each GET with what it received, and keeps it."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, "token": self.headers.get("X-Token")})
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    service = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{service.server_address[1]}", seen
    finally:
        service.shutdown()
        service.server_close()


def test_sql_and_transfer_steps_on_a_postgresql_store(
    pg_server: Server, pg_api: httpx2.Client, pg_project: str, tmp_path: Path
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    engine = create_engine(source_url)
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, updated_at TEXT)")
        )
        conn.execute(
            text("INSERT INTO orders VALUES (:id, :amount, :at)"),
            [{"id": i, "amount": i * 1.5, "at": f"2026-01-01 00:00:{i:02d}"} for i in range(1, 7)],
        )
    engine.dispose()
    add_connection(pg_server, pg_project, "src", source_url)
    add_connection(pg_server, pg_project, "dst", f"sqlite:///{tmp_path / 'target.db'}")

    query = {
        "name": "q",
        "kind": "sql",
        "config": {
            "connection": "src",
            "query": "select id, amount from orders where id > :after order by id",
            "parameters": {"after": "{{ params.after }}"},
        },
    }
    job = make_job(pg_api, pg_project, [query], parameters={"after": 0})
    done = run_job(pg_api, pg_project, job, parameters={"after": 4})
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in done["result"]["records"]] == [5, 6]
    assert [c["name"] for c in done["result"]["schema"]] == ["id", "amount"]

    copy = {
        "name": "copy",
        "kind": "transfer",
        "config": {
            "source": {"connection": "src", "table": "orders"},
            "target": {"connection": "dst", "table": "orders"},
            "primaryKey": ["id"],
            "watermark": "updated_at",
        },
    }
    job = make_job(pg_api, pg_project, [copy])
    first = run_job(pg_api, pg_project, job, mode="full")
    assert (first["status"], first["result"]["rowsWritten"]) == ("succeeded", 6), first
    again = run_job(pg_api, pg_project, job, mode="delta")
    assert (again["result"]["mode"], again["result"]["rowsRead"]) == ("delta", 0), again


def test_http_step_and_connections_on_a_postgresql_store(
    pg_api: httpx2.Client, pg_project: str, echo_service: tuple[str, list[dict[str, Any]]]
) -> None:
    base, seen = echo_service
    created = pg_api.post(
        f"/api/v1/projects/{pg_project}/connections",
        json={"name": "svc", "url": base, "headers": {"X-Token": TOKEN}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["headers"] == {"X-Token": "***"}
    probe = pg_api.post(f"/api/v1/projects/{pg_project}/connections/svc/test")
    assert probe.status_code == 200 and probe.json()["ok"] is True, probe.text

    step = {
        "name": "call",
        "kind": "http",
        "config": {"connection": "svc", "path": "/items/{{ params.item }}"},
    }
    job = make_job(pg_api, pg_project, [step], parameters={"item": "x"})
    done = run_job(pg_api, pg_project, job, parameters={"item": "a/../b"})
    assert done["status"] == "succeeded", done
    assert done["result"]["body"] == {"path": "/items/a%2F..%2Fb"}  # one segment, encoded
    assert seen[-1] == {"path": "/items/a%2F..%2Fb", "token": TOKEN}
    logs = pg_api.get(f"/api/v1/executions/{done['id']}/logs", params={"limit": 1000})
    assert TOKEN not in logs.text and TOKEN not in json.dumps(done)
