"""Fixtures of the data steps' tests: a real server that knows an encryption key, the
databases a step's connection may name (SQLite files, a throwaway PostgreSQL database, the
MariaDB `test` database), and helpers to make connections and run jobs over HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import Server, create_postgres_database, drop_postgres_database, service_missing

# The servers of these tests encrypt connections with this key (JOBPORT_ENCRYPTION_KEY).
ENCRYPTION_KEY = "l7C0mY0q7d5c9rX0a3bXy2e3o1yQKj8m8Gx3cE7n0Z4="
MARIADB_URL = os.environ.get("JOBPORT_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per module (SQLite store) with a known encryption key: it stands in for
    tests/conftest.py's `server`, so that file's `api` and `project` fixtures use it."""
    workdir = tmp_path_factory.mktemp("server")
    server = Server(
        f"sqlite:///{workdir / 'jobport.db'}", workdir, encryption_key=ENCRYPTION_KEY
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def data_server(server: Server) -> Server:
    return server


@pytest.fixture(scope="module")
def pg_data_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for the data of this module's steps."""
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The MariaDB `test` database (made if absent); tests use tables of unique names."""
    try:
        import pymysql
    except ImportError as exc:  # pragma: no cover - pymysql is in the dev extra
        service_missing("MariaDB", f"pymysql is not installed ({exc})")
    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3)
    except pymysql.Error as exc:
        service_missing("MariaDB", str(exc).strip())
    with conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE IF NOT EXISTS test")
    return MARIADB_URL


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of each kind, for the same test on each."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_data_url"))
    return str(request.getfixturevalue("mariadb_url"))


def unique(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def add_connection(server: Server, project: str, name: str, url: str) -> None:
    """The project's connection `name` to `url`, made with POST .../connections."""
    with server.client() as api:
        response = api.post(
            f"/api/v1/projects/{project}/connections", json={"name": name, "url": url}
        )
    assert response.status_code == 201, response.text


def make_job(api: httpx2.Client, project: str, steps: list[dict[str, Any]], **fields: Any) -> str:
    name = fields.pop("name", unique("job").replace("_", "-"))
    body = {"name": name, "steps": steps, **fields}
    response = api.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return name


def run_job(
    api: httpx2.Client, project: str, job: str, *, wait: float = 25, **body: Any
) -> dict[str, Any]:
    """Execute the job and wait for its end; the execution's JSON."""
    response = api.post(
        f"/api/v1/projects/{project}/jobs/{job}/execute", params={"wait": wait}, json=body
    )
    assert response.status_code == 200, response.text
    execution: dict[str, Any] = response.json()
    assert execution["status"] not in ("queued", "running"), execution
    return execution


def log_text(api: httpx2.Client, execution_id: str) -> str:
    response = api.get(f"/api/v1/executions/{execution_id}/logs", params={"limit": 10000})
    assert response.status_code == 200, response.text
    return "\n".join(line["text"] for line in response.json()["items"])
