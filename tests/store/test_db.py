"""The database handle: URLs, SQLite settings, and transactions that commit or roll back whole."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jobport.store import db as db_module
from jobport.store import projects as project_store
from jobport.store.db import Checkpointer, Database, normalise_url
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


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Another process's writer, as SQLite sees it: a second connection in BEGIN IMMEDIATE."""
    import sqlite3

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


def test_a_sqlite_writer_gets_the_lock_within_milliseconds_of_its_release(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'busy.db'}")
    db.upgrade()
    held = threading.Event()
    holder = threading.Thread(
        target=_hold_write_lock, args=(tmp_path / "busy.db", 0.25, held), daemon=True
    )
    holder.start()
    held.wait(5)
    began = time.monotonic()
    with db.write() as conn:
        add_project(conn)
    waited = time.monotonic() - began
    holder.join(5)
    # SQLite's own busy handler tries at 228 ms, then at 328 ms (its pauses grow to 100 ms);
    # the pauses here are at most 1 ms.
    assert 0.24 <= waited < 0.3
    with db.read() as conn:  # the connection's busy timeout is back for other statements
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.dispose()


def test_a_sqlite_writer_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from jobport.store import db as db_module

    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 200)
    db = Database(f"sqlite:///{tmp_path / 'busy.db'}")
    db.upgrade()
    held = threading.Event()
    holder = threading.Thread(
        target=_hold_write_lock, args=(tmp_path / "busy.db", 1.0, held), daemon=True
    )
    holder.start()
    held.wait(5)
    began = time.monotonic()
    with pytest.raises(Exception) as refused, db.write():
        pass
    assert 0.18 <= time.monotonic() - began < 0.6
    assert isinstance(refused.value.__cause__ or refused.value, sqlite3.OperationalError) or (
        "locked" in str(refused.value)
    )
    holder.join(5)
    db.dispose()


def _wal_after_writes(tmp_path: Path, name: str, checkpointing: bool) -> int:
    db = Database(f"sqlite:///{tmp_path / name}")
    db.upgrade()
    checkpointer = Checkpointer(str(tmp_path / name), interval=0.01) if checkpointing else None
    if checkpointer is not None:
        checkpointer.start()
    try:
        for i in range(400):
            with db.write() as conn:
                add_project(conn, f"p{i}", description="x" * 2000)
            if i % 50 == 0:
                time.sleep(0.03)  # turns for the checkpointer
    finally:
        if checkpointer is not None:
            checkpointer.stop()
        size = (tmp_path / f"{name}-wal").stat().st_size
        db.dispose()
    return size


def test_a_servers_checkpointer_keeps_the_wal_short_without_the_writers_doing_it(
    tmp_path: Path,
) -> None:
    """Writers checkpoint themselves only past WAL_AUTOCHECKPOINT_PAGES; the server's
    thread copies the WAL back meanwhile, so the file never grows that far."""
    alone = _wal_after_writes(tmp_path, "alone.db", checkpointing=False)
    helped = _wal_after_writes(tmp_path, "helped.db", checkpointing=True)
    assert alone > 3 * 1024 * 1024  # 400 commits of a few pages each, none copied back
    assert helped < alone / 4, (helped, alone)


def test_only_a_sqlite_file_gets_a_checkpointer(tmp_path: Path) -> None:
    assert Checkpointer.of(Database(f"sqlite:///{tmp_path / 'a.db'}")) is not None
    assert Checkpointer.of(Database("sqlite:///:memory:")) is None
    assert Checkpointer.of(Database("postgresql://nobody@127.0.0.1:1/none")) is None


@pytest.mark.postgres  # SQLite has no connection to lose
def test_a_connection_busy_a_moment_ago_is_not_pinged_and_an_idle_dead_one_is_replaced(
    migrated_postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(migrated_postgres.url)  # a pool of its own: one connection, its backend known
    pings: list[int] = []
    real_ping = db_module.ping
    monkeypatch.setattr(db_module, "ping", lambda conn: pings.append(1) or real_ping(conn))
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.2)

    def backend() -> int:
        with db.read() as conn:
            return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    pid = backend()
    for _ in range(20):  # a busy connection: no ping (a round trip each, before)
        assert backend() == pid
    assert pings == []
    other = Database(db.url, pool=False)  # the server drops it while it sits in the pool
    with other.write() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    other.dispose()
    time.sleep(0.3)
    fresh = backend()  # pinged, found dead, replaced: the caller sees nothing of it
    db.dispose()
    assert fresh != pid and pings == [1]


def test_a_checkpoint_that_keeps_failing_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not an SQLite file" * 100)
    checkpointer = Checkpointer(str(broken), interval=0.01)
    checkpointer.start()
    time.sleep(0.2)  # about twenty turns, each failing
    checkpointer.stop()
    said = [r for r in caplog.records if "background WAL checkpoint failed" in r.getMessage()]
    assert len(said) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_autocommit_commits_each_statement_and_gives_the_connection_back_transactional(
    db: Database,
) -> None:
    """A statement in autocommit() is committed at once (another connection sees it before
    the block ends), and the pooled connection goes back to transactions after it: a write
    that raises on it still undoes everything."""
    from sqlalchemy import insert

    from .rows import project_row

    with db.autocommit() as conn:
        raw = conn.connection.dbapi_connection
        conn.execute(insert(projects), [project_row("at-once")])
        with db.engine.connect() as other:
            seen = other.execute(select(projects.c.name).where(projects.c.name == "at-once"))
            assert seen.scalar() == "at-once"
    assert raw.autocommit is False
    with pytest.raises(RuntimeError), db.write() as conn:  # the same pooled connection (LIFO)
        assert conn.connection.dbapi_connection is raw
        conn.execute(insert(projects), [project_row("undone")])
        raise RuntimeError("rolled back")
    with db.read() as conn:
        names = set(conn.execute(select(projects.c.name)).scalars())
    assert names == {"at-once"}
