"""The one clock: UTC now, aware. Time is UTC inside; local time only at the edges."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
