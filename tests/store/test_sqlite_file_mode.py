"""The SQLite file holds the token signing key: only its owner may read it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import text

from jobport.store.db import Database


def modes(path: Path) -> dict[str, int]:
    return {
        p.name: p.stat().st_mode & 0o777
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if p.exists()
    }


def test_a_new_database_file_and_its_wal_and_shm_are_its_owner_s_only(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    old_umask = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        with db.write() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        found = modes(path)
        db.dispose()
    finally:
        os.umask(old_umask)
    assert found == {"new.db": 0o600, "new.db-wal": 0o600, "new.db-shm": 0o600}


def test_upgrade_takes_read_access_away_from_others_on_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    keep = sqlite3.connect(path)  # while it is open, the -wal and -shm files stay
    try:
        keep.execute("PRAGMA journal_mode=WAL")
        keep.execute("CREATE TABLE t (n INTEGER)")
        keep.commit()
        for name in modes(path):
            os.chmod(tmp_path / name, 0o644)
        assert modes(path) == {"old.db": 0o644, "old.db-wal": 0o644, "old.db-shm": 0o644}

        db = Database(f"sqlite:///{path}")
        db.upgrade()
        db.dispose()
        assert modes(path) == {"old.db": 0o600, "old.db-wal": 0o600, "old.db-shm": 0o600}
    finally:
        keep.close()
