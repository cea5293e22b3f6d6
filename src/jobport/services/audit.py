"""The audit trail: who did what, from where, with what outcome; written in small batches."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from jobport.domain.audit import AuditEntry
from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.domain.pages import Page
from jobport.domain.values import clean, clean_text
from jobport.errors import Invalid
from jobport.services.runtime import Runtime
from jobport.store import access as access_store
from jobport.store.db import Database

log = logging.getLogger("jobport.audit")
OUTCOMES = ("ok", "denied", "failed")


def entry(
    *,
    action: str,
    outcome: str,
    principal: str | None = None,
    address: str | None = None,
    target: str | None = None,
    project_id: str | None = None,
    status: int | None = None,
    details: Any = None,
) -> dict[str, Any]:
    # Clipped to the columns and cleaned: what a caller sent (a path, a made-up client id)
    # must fit, or one entry would fail its whole batch on PostgreSQL again and again.
    return {
        "id": new_id(),
        "at": utcnow(),
        "principal": _fit(principal, 300),
        "address": _fit(address, 64),
        "action": _fit(action, 100) or "",
        "target": _fit(target, 500),
        "project_id": _fit(project_id, 36),
        "outcome": outcome,
        "status": status,
        "details": clean(details),
    }


def _fit(value: str | None, size: int) -> str | None:
    if value is None:
        return None
    value = clean_text(value)
    return value if len(value) <= size else value[: size - 1] + "…"


class AuditTrail:
    """Buffers entries and writes them every `interval` seconds in one transaction.

    Batching keeps the audit off the hot path (one write per batch, not per request); a
    crash can lose at most the last interval's entries, and a clean stop flushes them.
    """

    def __init__(self, db: Database, interval: float = 0.25) -> None:
        self.db = db
        self.interval = interval
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # One flush at a time: a reader's flush waits for the one in flight to commit.
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="jobport-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(row)

    def flush(self) -> None:
        """Write what is pending; returns once every entry added before the call is
        written (or, if the write failed, back in the queue), including the entries a
        flush already in flight had taken."""
        with self._flushing:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                with self.db.write() as conn:
                    access_store.insert_audit(conn, rows)
            except Exception:
                log.exception("could not write %d audit entries; retrying", len(rows))
                with self._lock:
                    self._pending[:0] = rows

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self.flush()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.flush()


def record(rt: Runtime, row: dict[str, Any]) -> None:
    """Record now when no trail runs (CLI --local), else hand it to the trail."""
    if rt.audit is not None:
        rt.audit.add(row)
        return
    with rt.db.write() as conn:
        access_store.insert_audit(conn, [row])


def list_page(
    rt: Runtime,
    *,
    principal: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of audit entries (AuditEntry items), newest first, filtered."""
    if outcome is not None and outcome not in OUTCOMES:
        raise Invalid(
            f"outcome must be one of {list(OUTCOMES)}",
            code="invalid_filter",
            details=[{"field": "outcome", "reason": "unknown outcome"}],
        )
    if rt.audit is not None:
        rt.audit.flush()  # a reader sees every write that answered before it asked
    with rt.db.read() as conn:
        page = access_store.list_audit(
            conn,
            principal=principal,
            action=action,
            outcome=outcome,
            target=target,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
    return Page([AuditEntry.from_row(row) for row in page.items], page.next_cursor)
