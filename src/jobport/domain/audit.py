"""The audit trail's record: who did what, from where, with what outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit trail. `at` is aware UTC."""

    id: str
    at: dt.datetime
    principal: str | None
    address: str | None
    action: str
    target: str | None
    project_id: str | None
    outcome: str
    status: int | None
    details: Any

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEntry:
        """From a stored audit row (its columns are the fields)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})
