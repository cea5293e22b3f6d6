"""What services need at hand: settings, the database, and the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobport.settings import Settings
from jobport.store.db import Database

if TYPE_CHECKING:
    from jobport.engine.dispatcher import Dispatcher


@dataclass
class Runtime:
    settings: Settings
    db: Database
    dispatcher: Dispatcher | None = None  # None: store-only use (CLI --local, tests)
    access: Any = None  # services.access.AccessState, set by services.access.bootstrap
    audit: Any = None  # services.audit.AuditTrail, set by the API app

    def check_database(self) -> None:
        """Raise if the database does not answer (for /healthz)."""
        with self.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
