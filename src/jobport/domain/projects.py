"""Projects: the record services hand to the faces."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Project:
    """A project as stored; the unit jobs, schedules and project roles belong to."""

    id: str
    name: str
    description: str
    created_at: dt.datetime  # aware UTC, as the store hands every time back
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Project:
        return cls(row["id"], row["name"], row["description"], row["created_at"], row["updated_at"])
