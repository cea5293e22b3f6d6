"""Store fixtures: a migrated database per backend (SQLite and PostgreSQL), empty per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from conftest import PG_ADMIN_URL
from jobport.store.db import Database
from jobport.store.tables import (
    api_keys,
    audit_log,
    execution_logs,
    executions,
    jobs,
    projects,
    role_members,
    roles,
    server_secrets,
    sessions,
    users,
)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def empty(db: Database) -> None:
    """Delete every row, children first."""
    with db.write() as conn:
        for table in (
            role_members,
            roles,
            sessions,
            users,
            api_keys,
            audit_log,
            server_secrets,
            execution_logs,
            executions,
            jobs,
            projects,
        ):
            conn.execute(delete(table))


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> Iterator[Database]:
    """The session's PostgreSQL database, migrated once; tests empty it before use."""
    db = Database(postgres_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a fresh SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'store.db'}")
        database.upgrade()
        yield database
        database.dispose()
    else:
        database = request.getfixturevalue("migrated_postgres")
        empty(database)
        yield database


@pytest.fixture
def new_postgres_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Creates extra empty PostgreSQL databases (for migrations, servers); drops them after."""
    import psycopg

    base = postgres_url.rsplit("/", 1)[0]
    created: list[str] = []

    def make() -> str:
        name = f"jobport_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{base}/{name}"

    yield make
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all, not even Alembic's."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    else:
        database = Database(request.getfixturevalue("new_postgres_database")(), pool=False)
    yield database
    database.dispose()


@dataclass(frozen=True)
class Sent:
    """A statement as psycopg sent it: its SQL, its parameters, whether in autocommit."""

    sql: str
    params: Any
    autocommit: bool


@pytest.fixture
def sent_to_postgres(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every statement psycopg executes during the test, whether through SQLAlchemy or on the
    driver's cursor (store/driver.py, which SQLAlchemy's cursor events do not see)."""
    import psycopg

    seen: list[Sent] = []
    real = psycopg.Cursor.execute

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        sql = query if isinstance(query, str) else str(query)
        seen.append(Sent(sql, params, bool(self.connection.autocommit)))
        return real(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return seen
