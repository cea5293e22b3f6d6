"""The audit trail's batches (services/audit.py): what a reader may count on."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from jobport.services import audit
from jobport.store import access as access_store
from jobport.store.db import Database
from jobport.store.tables import audit_log


def test_a_flush_returns_once_the_batch_in_flight_is_written(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader flushes before it lists (`list_page`), so that it sees every entry of a
    request answered before it asked. When the trail's own thread has just taken that
    entry and is still writing it, the reader's flush must wait for that write, not
    return at once with nothing left to take."""
    taken = threading.Event()
    real = access_store.insert_audit

    def slow(conn: Any, rows: list[dict[str, Any]]) -> None:
        taken.set()
        time.sleep(0.5)
        real(conn, rows)

    monkeypatch.setattr(access_store, "insert_audit", slow)
    trail = audit.AuditTrail(db, interval=0.01)
    trail.start()
    try:
        trail.add(audit.entry(action="login", outcome="denied", principal="user:ghost"))
        assert taken.wait(5), "the trail's thread never wrote"
        trail.flush()  # what list_page does before it reads
        with db.read() as conn:
            principals = list(conn.execute(select(audit_log.c.principal)).scalars())
        assert principals == ["user:ghost"]
    finally:
        trail.stop()
