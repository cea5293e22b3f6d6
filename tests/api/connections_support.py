"""What the connection tests share: a server per backend, the secrets they plant, and the
search for those secrets in every answer, the audit log, the server's log and the database.

Each test module keeps its own list of answers (`Answers`) and ends with a test that calls
`assert_no_secret_anywhere`, so a secret that leaks from any test of the module is found.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from conftest import (
    Server,
    create_postgres_database,
    drop_postgres_database,
    sqlite_path,
    wait_for,
)
from jobport.store.db import Database
from jobport.store.secrets import load_cipher
from jobport.store.tables import connections as connections_table

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Unique to this run, so finding one anywhere can only mean it leaked from these tests.
PASSWORD = f"pw-{uuid.uuid4().hex}"
TOKEN = f"tok-{uuid.uuid4().hex}"
SECRETS = (PASSWORD, TOKEN)
MASK = "***"


class Answers:
    """Every answer a client received (an httpx2 response hook), to look for secrets in."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def keep(self, response: httpx2.Response) -> None:
        response.read()
        self.texts.append(f"{response.status_code} {dict(response.headers)} {response.text}")

    def client(self, server: Server, **kwargs: Any) -> httpx2.Client:
        return server.client(event_hooks={"response": [self.keep]}, **kwargs)


def serve(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running server on a fresh SQLite file or PostgreSQL database (a fixture's body)."""
    workdir = tmp_path_factory.mktemp("connections")
    url = f"sqlite:///{workdir / 'jobport.db'}" if backend == "sqlite" else None
    url = url or create_postgres_database()
    server = Server(url, workdir).start()
    try:
        yield server
    finally:
        server.stop()
        if backend != "sqlite":
            drop_postgres_database(url)


def new_project(api: httpx2.Client) -> str:
    name = f"p-{uuid.uuid4().hex[:10]}"
    assert api.post("/api/v1/projects", json={"name": name}).status_code == 201
    return name


def base(project: str) -> str:
    return f"/api/v1/projects/{project}/connections"


def pg_url(password: str = PASSWORD, port: int = 5432) -> str:
    # The local PostgreSQL trusts 127.0.0.1: any password gets in, so it travels all the way.
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"


def stored(server: Server, connection_id: str) -> dict[str, Any]:
    """The row as the database holds it, and its secret decrypted with the server's key."""
    db = Database(server.database_url, pool=False)
    try:
        with db.read() as conn:
            query = select(connections_table).where(connections_table.c.id == connection_id)
            row = dict(conn.execute(query).one()._mapping)
    finally:
        db.dispose()
    key_file = server.workdir / ".jobport" / "encryption.key"
    return {**row, "decrypted": load_cipher("", key_file).decrypt(row["secret"])}


def audit_text(api: httpx2.Client) -> str:
    """The whole audit log as its pages read."""
    texts, cursor = [], None
    while True:
        page = api.get("/api/v1/audit", params={"limit": 500, "cursor": cursor})
        assert page.status_code == 200, page.text
        texts.append(page.text)
        cursor = page.json()["nextCursor"]
        if not cursor:
            return "\n".join(texts)


def assert_no_secret_anywhere(
    server: Server, api: httpx2.Client, answers: Answers, *, action: str
) -> None:
    """No planted secret in any answer kept, the audit log (once `action` is in it), the
    server's log, or the database: the whole SQLite file and its WAL, or PostgreSQL's rows."""
    wait_for(lambda: action in audit_text(api))
    audit = audit_text(api)
    assert len(answers.texts) > 10
    for secret in SECRETS:
        assert secret not in audit
        assert secret not in server.log()
        leaked = [a for a in answers.texts if secret in a]
        assert leaked == [], leaked[:3]
    path = sqlite_path(server.database_url)
    if path is not None:
        for file in path.parent.glob(path.name + "*"):
            data = file.read_bytes()
            assert all(s.encode() not in data for s in SECRETS), file
        return
    db = Database(server.database_url, pool=False)
    try:
        with db.read() as conn:
            rows = conn.exec_driver_sql("SELECT c::text FROM connections c").all()
            audit_rows = conn.exec_driver_sql("SELECT a::text FROM audit_log a").all()
    finally:
        db.dispose()
    assert rows and all(s not in str(rows) for s in SECRETS)
    assert all(s not in str(audit_rows) for s in SECRETS)
