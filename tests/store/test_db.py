"""The database handle: URLs, SQLite settings, and transactions that commit or roll back whole."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jobport.store import projects as project_store
from jobport.store.db import Database, normalise_url
from jobport.store.tables import projects

from .rows import add_project


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///jobport.db", "sqlite:///jobport.db"),
    ],
)
def test_pasted_urls_are_normalised_to_psycopg_3(given: str, used: str) -> None:
    assert normalise_url(given) == used


def test_a_write_that_raises_leaves_nothing_behind(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as conn:
        add_project(conn, "half-done")
        raise RuntimeError("boom")
    with db.read() as conn:
        assert project_store.find(conn, "half-done") is None
        assert conn.execute(select(func.count()).select_from(projects)).scalar_one() == 0


def test_sqlite_connections_get_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    db.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
    }


def test_sqlite_read_then_write_transactions_queue_instead_of_failing(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: racing read-modify-write transactions wait, none gets 'locked'."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.write() as conn:
        project = add_project(conn, "counter", description="0")
    barrier, errors = threading.Barrier(8), []

    def bump() -> None:
        try:
            barrier.wait(timeout=10)
            with db.write() as conn:
                current = int(project_store.get(conn, project["id"])["description"])
                project_store.update_fields(conn, project["id"], {"description": str(current + 1)})
        except Exception as exc:  # collected: assertion errors in threads are lost
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as conn:
        assert project_store.get(conn, "counter")["description"] == "8"
    db.dispose()
    assert errors == []


def test_sqlite_readers_do_not_block_a_writer(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.read() as reader:
        assert project_store.find(reader, "new") is None
        with db.write() as writer:  # would wait 30 s if the read held a write lock
            add_project(writer, "new")
        assert project_store.find(reader, "new") is None  # the reader keeps its snapshot
    with db.read() as conn:
        assert project_store.find(conn, "new") is not None
    db.dispose()
