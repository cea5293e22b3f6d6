"""A page of a listing: its items and the cursor of the next page (None: the last page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None
